package redisbudget

import "github.com/redis/go-redis/v9"

// The scripts run atomically on the Redis server (EVALSHA, falling back to
// EVAL when the server's script cache lacks them: redis.Script.Run). They
// touch only KEYS[1], as Redis Cluster requires. Values are decimal
// integer strings; tonumber is exact below 2^53, which the Go side checks.

// reserveScript grants k = min(n, floor((quota - used) / cost)) units
// (never negative), adds k*cost, and sets the key's TTL relative to now.
//
//	KEYS[1] = budget key
//	ARGV    = quota milli, cost milli, n, ttl seconds
//	returns { k, total milli after the grant }
var reserveScript = redis.NewScript(`
local raw = redis.call('GET', KEYS[1])
local used = 0
if raw then
  used = tonumber(raw)
  if used == nil then
    return redis.error_reply('ERR sluice budget key does not hold an integer')
  end
end
local quota = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local k = 0
if quota > used then
  k = math.floor((quota - used) / cost)
  if k > n then k = n end
end
if k > 0 then
  used = redis.call('INCRBY', KEYS[1], k * cost)
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return { k, used }
`)

// refundScript subtracts up to ARGV[1] milli but never goes below zero and
// never creates the key. DECRBY keeps the key's TTL.
//
//	KEYS[1] = budget key
//	ARGV    = milli
//	returns total milli after the refund
var refundScript = redis.NewScript(`
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local used = tonumber(raw)
if used == nil then
  return redis.error_reply('ERR sluice budget key does not hold an integer')
end
local m = tonumber(ARGV[1])
if m > used then m = used end
if m > 0 then
  return redis.call('DECRBY', KEYS[1], m)
end
return used
`)

// chargeScript adds milli unconditionally and sets the relative TTL: it
// records units a relay granted from its local share while Redis was away.
//
//	KEYS[1] = budget key
//	ARGV    = milli, ttl seconds
//	returns total milli after the charge
var chargeScript = redis.NewScript(`
local used = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return used
`)
