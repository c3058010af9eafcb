-- A nick claim (chatroom/scaleout/presence.py): one member of one node holds a nick and its look-alike
-- skeleton across every node.
-- KEYS[1] nicks hash (nick key -> "node/id"), KEYS[2] skeletons hash (skeleton -> "node/id")
-- ARGV[1] the claimant "node/id"; ARGV[2] the new nick key ("" : none, only release);
-- ARGV[3] its skeleton; ARGV[4] the old nick key ("": none); ARGV[5] its skeleton
-- Returns {"ok", ""}, or {"taken"|"alike", holder} and changes nothing.
local me = ARGV[1]
if ARGV[2] ~= '' then
  local holder = redis.call('HGET', KEYS[1], ARGV[2])
  if holder and holder ~= me then return {'taken', holder} end
  local alike = redis.call('HGET', KEYS[2], ARGV[3])
  if alike and alike ~= me then return {'alike', alike} end
end
if ARGV[4] ~= '' and ARGV[4] ~= ARGV[2] and redis.call('HGET', KEYS[1], ARGV[4]) == me then
  redis.call('HDEL', KEYS[1], ARGV[4])
end
if ARGV[5] ~= '' and ARGV[5] ~= ARGV[3] and redis.call('HGET', KEYS[2], ARGV[5]) == me then
  redis.call('HDEL', KEYS[2], ARGV[5])
end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[2], me)
  redis.call('HSET', KEYS[2], ARGV[3], me)
end
return {'ok', ''}
