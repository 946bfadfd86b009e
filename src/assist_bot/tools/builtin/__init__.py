"""The tools assist-bot ships with (loaded by `loading.BUILTIN_MODULES`)."""
