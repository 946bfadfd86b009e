"""Lua scripts of the Redis store: each makes a multi-step change atomic (and one
round trip), which is what keeps replicas from answering a message twice or
dropping one."""

# Compare-and-delete / compare-and-extend: only the owner may touch its lock.
RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
REFRESH = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"

# Take the whole queue in one atomic step, so no message is answered twice.
TAKE = "local items = redis.call('lrange', KEYS[1], 0, -1) redis.call('del', KEYS[1]) return items"

# Decide once: only a record without a decision takes one.
DECIDE = (
    "if redis.call('hexists', KEYS[1], 'record') == 0 or redis.call('hexists', KEYS[1], 'decision') == 1 "
    "then return 0 end redis.call('hset', KEYS[1], 'decision', ARGV[1]) return 1"
)

# A message arrives. KEYS: seen, pending, lock. ARGV: seen ttl (s), item, pending ttl (s), owner, lease (ms).
# Returns {accepted, locked}.
ENQUEUE = """
if not redis.call('set', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return {0, 0} end
redis.call('rpush', KEYS[2], ARGV[2])
redis.call('expire', KEYS[2], ARGV[3])
if redis.call('set', KEYS[3], ARGV[4], 'NX', 'PX', ARGV[5]) then return {1, 1} end
return {1, 0}
"""

# A turn ends. KEYS: lock, pending. ARGV: owner, lease (ms).
# 1: more is queued and we keep the lock; 0: released; -1: the lock was no longer ours.
END_TURN = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('llen', KEYS[2]) > 0 then redis.call('pexpire', KEYS[1], ARGV[2]) return 1 end
redis.call('del', KEYS[1])
return 0
"""
