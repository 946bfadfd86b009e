"""The tools assist-bot ships with; importing this package declares them."""

from assist_bot.tools.builtin import email, weather

__all__ = ["email", "weather"]
