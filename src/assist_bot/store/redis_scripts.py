"""Lua scripts of the Redis store: each makes a multi-step change atomic (and one
round trip), which is what keeps replicas from answering a message twice or
dropping one."""

# Compare-and-delete / compare-and-extend: only the owner may touch its lock.
RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
REFRESH = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"

# Decide once: only a record without a decision takes one; announcing it on the decisions
# channel (ARGV[2]) in the same step wakes the waiting turn on whichever replica it runs.
DECIDE = (
    "if redis.call('hexists', KEYS[1], 'record') == 0 or redis.call('hexists', KEYS[1], 'decision') == 1 "
    "then return 0 end redis.call('hset', KEYS[1], 'decision', ARGV[1]) "
    "redis.call('publish', ARGV[2], KEYS[1]) return 1"
)

# Stop a running answer once. KEYS: running. ARGV: turn, who stops, the channel to announce on.
# Only the turn still recorded there (not a later one), and only the first stop.
STOP = (
    "if redis.call('hget', KEYS[1], 'turn') ~= ARGV[1] or redis.call('hexists', KEYS[1], 'stopped_by') == 1 "
    "then return 0 end redis.call('hset', KEYS[1], 'stopped_by', ARGV[2]) "
    "redis.call('publish', ARGV[3], KEYS[1]) return 1"
)
# An answer ended: its record goes (a later turn's stays), and whoever waits for its stop
# hears so. KEYS: running. ARGV: turn, the channel to announce on.
CLEAR_RUNNING = (
    "if redis.call('hget', KEYS[1], 'turn') ~= ARGV[1] then return 0 end redis.call('del', KEYS[1]) "
    "redis.call('publish', ARGV[2], KEYS[1]) return 1"
)

# A message arrives. KEYS: seen, pending, lock, known.
# ARGV: seen ttl (s), item, pending ttl (s), owner, lease (ms), retention (s),
# max queued messages, max queued bytes (0: no cap).
# Returns {accepted, locked, refused}: refused 1 = too many messages wait, 2 = too many bytes.
# `known` marks the thread as one the bot is part of at once, so follow-ups without a mention
# reach it even while its first answer streams. A refused message leaves only its dedupe token
# (a redelivery is not refused twice); the lock is still tried, so that a full queue whose turn
# died is drained by the replica that sees it.
ENQUEUE = """
if not redis.call('set', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return {0, 0, 0} end
local refused = 0
local waiting = redis.call('llen', KEYS[2])
if waiting > 0 then
  if tonumber(ARGV[7]) > 0 and waiting >= tonumber(ARGV[7]) then
    refused = 1
  elseif tonumber(ARGV[8]) > 0 then
    local size = #ARGV[2]
    for _, queued in ipairs(redis.call('lrange', KEYS[2], 0, -1)) do size = size + #queued end
    if size > tonumber(ARGV[8]) then refused = 2 end
  end
end
if refused == 0 then
  redis.call('rpush', KEYS[2], ARGV[2])
  redis.call('expire', KEYS[2], ARGV[3])
  redis.call('set', KEYS[4], '1', 'EX', ARGV[6])
end
local locked = 0
if redis.call('set', KEYS[3], ARGV[4], 'NX', 'PX', ARGV[5]) then locked = 1 end
if refused == 0 then return {1, locked, 0} end
return {0, locked, refused}
"""

# A turn ends. KEYS: lock, pending, server state, history. ARGV: owner, lease (ms), new server
# state or '', retention (s), how many of the oldest history items to drop, then history items to
# append. Saves what the turn changed (saving it here spares a round trip).
# 1: more is queued and we keep the lock; 0: released; -1: the lock was no longer ours.
END_TURN = """
if ARGV[3] ~= '' then redis.call('set', KEYS[3], ARGV[3], 'EX', ARGV[4]) end
if tonumber(ARGV[5]) > 0 then redis.call('ltrim', KEYS[4], ARGV[5], -1) end
if #ARGV > 5 then
  redis.call('rpush', KEYS[4], unpack(ARGV, 6))
  redis.call('expire', KEYS[4], ARGV[4])
end
if redis.call('get', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('llen', KEYS[2]) > 0 then redis.call('pexpire', KEYS[1], ARGV[2]) return 1 end
redis.call('del', KEYS[1])
return 0
"""
