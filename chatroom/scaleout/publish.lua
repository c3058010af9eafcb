-- One room's events of one loop pass: store the lines, publish everything, in one atomic step.
-- (chatroom/scaleout/bus.py runs it with EVALSHA; docs/scale-out.md describes the keys.)
--
-- KEYS[1]  the room's meta hash: seq (the last id given), epoch (changes when Redis lost the room)
-- KEYS[2]  the room's stream: one entry per stored line, id "<room id>-0", field "l" = the line
-- ARGV[1]  the room's channel
-- ARGV[2]  retention: lines kept in the stream (0: no limit; trimmed with "~", so at least that many)
-- ARGV[3]  the caller's floor: the highest id it knows in this room; a room Redis does not hold
--          (new, or lost with an empty restart) starts above it, so ids never go back
-- ARGV[4]  the epoch to give the room if Redis does not hold it (random, made by the caller)
-- ARGV[5]  the caller's deadline, Unix ms (0: none): a call Redis runs later than that (it was stopped,
--          or the caller gave up waiting and told its speakers "not delivered") stores nothing
-- ARGV[6..] the events, in order: "s" .. payload for a line to store (it gets the next id),
--          "n" .. payload for an event that is only published (a join, a notice: no id)
--
-- Publishes one message on the channel: "<epoch> <first id> <last id>\n<event>\n<event>..."
-- (the events as given, flag included; ids are first..last in order over the "s" events; with no
-- stored line, first = last + 1). Returns {epoch, first id, last id}.

local meta, stream = KEYS[1], KEYS[2]
local deadline = tonumber(ARGV[5])
if deadline > 0 then
  local now = redis.call('TIME')
  if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) > deadline then
    return redis.error_reply('STALE this call came after its deadline: nothing was stored')
  end
end
local held = redis.call('HMGET', meta, 'epoch', 'seq')
local epoch, seq = held[1], tonumber(held[2])
if not epoch then
  epoch = ARGV[4]
  seq = tonumber(ARGV[3])
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1]
  if last then  -- a stream that outlived its meta keeps its ids too
    local top = tonumber(string.match(last[1], '^(%d+)'))
    if top > seq then seq = top end
  end
  redis.call('HSET', meta, 'epoch', epoch)
end
local first = seq + 1
local events = {}
for i = 6, #ARGV do
  local event = ARGV[i]
  if string.sub(event, 1, 1) == 's' then
    seq = seq + 1
    redis.call('XADD', stream, string.format('%d-0', seq), 'l', event)
  end
  events[#events + 1] = event
end
redis.call('HSET', meta, 'seq', seq)
local keep = tonumber(ARGV[2])
if keep > 0 and seq >= first then
  redis.call('XTRIM', stream, 'MAXLEN', '~', keep)
end
redis.call('PUBLISH', ARGV[1], epoch .. ' ' .. first .. ' ' .. seq .. '\n' .. table.concat(events, '\n'))
return {epoch, first, seq}
