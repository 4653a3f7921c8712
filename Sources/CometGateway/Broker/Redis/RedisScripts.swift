/// The Lua scripts the Redis broker runs: each keeps one channel's keys consistent in one atomic step.
///
/// Keys of channel `C` (with the prefix `P`, default `comet:`; `{C}` is a Redis Cluster hash tag, so that a channel's
/// keys live on one node): `P{C}:stream` (a Redis Stream of the retained messages: entry id `ID-0`, fields `m`, the
/// message encoded as RESP, and `n`, its payload bytes), `P{C}:last` (the newest id issued), `P{C}:floor` (the
/// newest id removed from history: a resume from below it is a gap), `P{C}:bytes` (payload bytes retained). Every key
/// expires `history.max_age` after the channel's last publish. Ids are the Redis server's clock in microseconds (one
/// clock for every node), at least one above the channel's last.
enum RedisScripts {
    /// Removes from the front of the stream what the history limits no longer allow (count, bytes, age).
    /// Shared by both scripts. ARGV[1..3]: max messages, max bytes, max age (microseconds).
    private static let trim = """
        local function trim(now)
          local maxn, maxb, maxage = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
          local floor = nil
          while true do
            local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
            if not first then break end
            local fid = tonumber(string.match(first[1], '^(%d+)'))
            local len = redis.call('XLEN', KEYS[1])
            local bytes = tonumber(redis.call('GET', KEYS[4]) or '0')
            if len > maxn or bytes > maxb or now - fid > maxage then
              redis.call('XDEL', KEYS[1], first[1])
              redis.call('DECRBY', KEYS[4], tonumber(first[2][4]))
              floor = fid
            else
              break
            end
          end
          if floor then
            local old = tonumber(redis.call('GET', KEYS[3]) or '0')
            if floor > old then redis.call('SET', KEYS[3], string.format('%.0f', floor)) end
          end
        end
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
        """

    /// Publishes one message. KEYS: stream, last, floor, bytes, deleted. ARGV: max messages, max bytes, max age (µs), expiry
    /// (ms), pub/sub channel, the encoded message, its payload bytes. Returns `{id, subscribers}` (nodes that got it).
    static let publish = trim + """

        local last = tonumber(redis.call('GET', KEYS[2]) or '0')
        local id = now
        if id <= last then id = last + 1 end
        local ids = string.format('%.0f', id)
        local n = tonumber(ARGV[7])
        if tonumber(ARGV[1]) > 0 and n <= tonumber(ARGV[2]) then
          redis.call('XADD', KEYS[1], ids .. '-0', 'm', ARGV[6], 'n', ARGV[7])
          redis.call('INCRBY', KEYS[4], n)
        else
          redis.call('SET', KEYS[3], ids)
        end
        redis.call('SET', KEYS[2], ids)
        redis.call('DEL', KEYS[5])
        trim(now)
        for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[4]) end
        local nodes = redis.call('PUBLISH', ARGV[5], 'm' .. ids .. ':' .. ARGV[6])
        return {ids, nodes}
        """

    /// A subscription's replay. KEYS: stream, last, floor, bytes. ARGV: max messages, max bytes, max age (µs), the
    /// position ('' for none). Returns `{last or false, floor, now, entries after the position}`.
    static let replay = trim + """

        trim(now)
        local last = redis.call('GET', KEYS[2])
        local floor = redis.call('GET', KEYS[3]) or '0'
        local entries = {}
        if ARGV[4] ~= '' and last then
          entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[4] .. '-0', '+')
        end
        return {last or false, floor, string.format('%.0f', now), entries}
        """
}
