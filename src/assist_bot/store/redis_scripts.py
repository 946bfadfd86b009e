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

# A channel's index of its threads (a sorted set: thread_ts → when its entry lapses, in ms of the
# store's clock), refreshed wherever a thread's conversation, history or `known` marker is written
# or has its retention renewed: entries that lapsed go, the thread's is renewed, and the set lives
# as long as its newest entry. A reset reads it instead of scanning the keyspace.
# (key, thread_ts, now in ms, entry lifetime in s)
_INDEX_THREAD = """
local function index_thread(key, thread_ts, now, lifetime)
  redis.call('zremrangebyscore', key, '-inf', now)
  redis.call('zadd', key, tonumber(now) + tonumber(lifetime) * 1000, thread_ts)
  redis.call('expire', key, lifetime)
end
"""

# On a cluster the index is in its channel's slot, not the thread's: written by this script of its
# own. KEYS: index. ARGV: thread_ts, now (ms), entry lifetime (s).
INDEX_THREAD = _INDEX_THREAD + "index_thread(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) return 1"

# A message arrives. KEYS: seen, pending, lock, known, and on a single Redis the channel's index
# of threads. ARGV: seen ttl (s), item, pending ttl (s), owner, lease (ms), retention (s),
# max queued messages, max queued bytes (0: no cap), thread_ts, now (ms), index entry lifetime (s).
# Returns {accepted, locked, refused}: refused 1 = too many messages wait, 2 = too many bytes.
# `known` marks the thread as one the bot is part of at once, so follow-ups without a mention
# reach it even while its first answer streams. A refused message leaves only its dedupe token
# (a redelivery is not refused twice); the lock is still tried, so that a full queue whose turn
# died is drained by the replica that sees it.
ENQUEUE = (
    _INDEX_THREAD
    + """
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
  if #KEYS > 4 then index_thread(KEYS[5], ARGV[9], ARGV[10], ARGV[11]) end
end
local locked = 0
if redis.call('set', KEYS[3], ARGV[4], 'NX', 'PX', ARGV[5]) then locked = 1 end
if refused == 0 then return {1, locked, 0} end
return {0, locked, refused}
"""
)

# A turn begins (its runner holds the lock). KEYS: pending, inflight, turn, server state, files,
# history. ARGV: retention (s), pending ttl (s), how often a message may be interrupted and tried
# again. The server state and the local history are read and their retention extended.
# The queue moves to `inflight`, where it stays until end_turn: if the owner dies meanwhile,
# the next turn finds it there (`old`) with the dead turn's reply (`turn`), answers those
# messages again and closes that reply with a note — unless they were interrupted too often
# already (a message that kills the process must not kill every replica in turn).
# On a single Redis, KEYS[7] is the channel's settings, read here too (one round trip), and KEYS[8]
# its index of threads, renewed here (ARGV: thread_ts, now (ms), index entry lifetime (s)); a
# cluster keeps them in another slot, so they are read and renewed beside the script and KEYS has six.
# Returns {old messages, new messages, server state or '', files, reply channel, reply ts, given up,
# history, channel settings (flat field/value list, or {})}.
BEGIN_TURN = (
    _INDEX_THREAD
    + """
local old = redis.call('lrange', KEYS[2], 0, -1)
local new = redis.call('lrange', KEYS[1], 0, -1)
local reply = redis.call('hmget', KEYS[3], 'channel', 'ts', 'tries')
local tries = 0
if #old > 0 then tries = (tonumber(reply[3]) or 0) + 1 end
local given_up = 0
if tries > tonumber(ARGV[3]) then given_up = #old old = {} tries = 0 redis.call('del', KEYS[2]) end
redis.call('del', KEYS[1], KEYS[3])
for i = 1, #new do redis.call('rpush', KEYS[2], new[i]) end
if #old + #new > 0 then redis.call('expire', KEYS[2], ARGV[2]) end
if tries > 0 then redis.call('hset', KEYS[3], 'tries', tries) redis.call('expire', KEYS[3], ARGV[2]) end
local conversation = redis.call('get', KEYS[4])
if conversation then redis.call('expire', KEYS[4], ARGV[1]) end
local files = redis.call('zrange', KEYS[5], 0, -1)
local past = redis.call('lrange', KEYS[6], 0, -1)
redis.call('expire', KEYS[6], ARGV[1])
local settings = {}
if #KEYS > 6 then settings = redis.call('hgetall', KEYS[7]) end
if #KEYS > 7 then index_thread(KEYS[8], ARGV[4], ARGV[5], ARGV[6]) end
local dead = #old > 0 or given_up > 0  -- a reply record without its messages is not a dead turn's
if not dead then reply = {} end
return {old, new, conversation or '', files, reply[1] or '', reply[2] or '', given_up, past, settings}
"""
)

# A turn ends. KEYS: lock, pending, server state, history, inflight, turn, and on a single Redis the
# channel's index of threads. ARGV: owner, lease (ms), new server state or '', retention (s), how many
# of the oldest history items to drop, thread_ts, now (ms), index entry lifetime (s), then history
# items to append. Saves what the turn changed (saving it here spares a round trip) and, unless
# another holder took the lock, lets go of the turn's messages and reply. A lock that lapsed (Redis
# was unreachable longer than the lease) but that nobody took is still ours: the turn did answer,
# so its messages must not be answered again.
# 1: more is queued and we keep (or take back) the lock; 0: released; -1: another holder has it.
END_TURN = (
    _INDEX_THREAD
    + """
if ARGV[3] ~= '' then redis.call('set', KEYS[3], ARGV[3], 'EX', ARGV[4]) end
if tonumber(ARGV[5]) > 0 then redis.call('ltrim', KEYS[4], ARGV[5], -1) end
if #ARGV > 8 then
  redis.call('rpush', KEYS[4], unpack(ARGV, 9))
  redis.call('expire', KEYS[4], ARGV[4])
end
if #KEYS > 6 and (ARGV[3] ~= '' or #ARGV > 8) then index_thread(KEYS[7], ARGV[6], ARGV[7], ARGV[8]) end
local holder = redis.call('get', KEYS[1])
if holder and holder ~= ARGV[1] then return -1 end
redis.call('del', KEYS[5], KEYS[6])
if redis.call('llen', KEYS[2]) > 0 then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
if holder then redis.call('del', KEYS[1]) end
return 0
"""
)

# Take over a thread whose owner is gone. KEYS: lock, pending, inflight. ARGV: owner, lease (ms).
# 1: taken; 0: someone holds the lock (alive, or its lease has not run out); -1: nothing to do.
TAKE_OVER = """
if redis.call('exists', KEYS[1]) == 1 then return 0 end
if redis.call('exists', KEYS[2]) == 0 and redis.call('exists', KEYS[3]) == 0 then return -1 end
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# Stop listing a thread, unless its lease was renewed meanwhile. KEYS: turns. ARGV: member, now (ms).
UNWATCH = """
local score = redis.call('zscore', KEYS[1], ARGV[1])
if score and tonumber(score) <= tonumber(ARGV[2]) then redis.call('zrem', KEYS[1], ARGV[1]) end
return 0
"""

# The sweeper's lease: keep it if ours, else take it if free. KEYS: sweeper. ARGV: owner, lease (ms).
HOLD = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
