-- Nodes that died (chatroom/scaleout/presence.py): a node in the set whose alive key expired loses its
-- presence entries and nick claims, atomically, so exactly one caller reports it.
-- KEYS[1] nodes set, KEYS[2] presence hash ("node/id" -> ...), KEYS[3] nicks, KEYS[4] skeletons
-- ("... -> node/id"); ARGV[1] the alive keys' prefix; ARGV[2] a node to clear in any case (a node
-- starting again under its old name clears what it left), "" for none.
-- Returns the names of the dead nodes reaped (not ARGV[2]).
local dead = {}
local function clear(node)
  local prefix = node .. '/'
  local n = #prefix
  local all = redis.call('HGETALL', KEYS[2])
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, n) == prefix then redis.call('HDEL', KEYS[2], all[i]) end
  end
  for _, key in ipairs({KEYS[3], KEYS[4]}) do
    all = redis.call('HGETALL', key)
    for i = 1, #all, 2 do
      if string.sub(all[i + 1], 1, n) == prefix then redis.call('HDEL', key, all[i]) end
    end
  end
  redis.call('SREM', KEYS[1], node)
end
if ARGV[2] ~= '' then clear(ARGV[2]) end
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. node) == 0 then
    clear(node)
    dead[#dead + 1] = node
  end
end
return dead
