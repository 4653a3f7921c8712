import CometCore
import CometRedis
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// The pub/sub side of ``RedisBroker``: one Redis subscription per channel with local subscribers, replays waiting
/// for it, live messages dispatched in order, and the fill-in after a reconnect.
extension RedisBroker {

    /// The hub's first local subscriber of `channel`: subscribe to it (called under the hub's lock: only enqueues).
    public func channelGained(_ channel: ChannelName) {
        let connection = self.state.withLockedValue { state -> RedisConnection? in
            state.desired.insert(channel)
            guard let connection = state.connection else { return nil }
            state.pending[channel, default: 0] += 1
            return connection
        }
        connection?.sendWithoutReply(["SUBSCRIBE", .string(self.eventsChannel(channel))])
    }

    /// The hub's last local subscriber of `channel` left: unsubscribe.
    public func channelLost(_ channel: ChannelName) {
        let (connection, waiters) = self.state.withLockedValue { state -> (RedisConnection?, [EventLoopPromise<Void>]) in
            state.desired.remove(channel)
            state.subscribed.remove(channel)
            state.lastDispatched.removeValue(forKey: channel)
            state.backfilling.removeValue(forKey: channel)
            return (state.connection, state.waiters.removeValue(forKey: channel) ?? [])
        }
        for waiter in waiters { waiter.fail(RedisError.unavailable) }
        connection?.sendWithoutReply(["UNSUBSCRIBE", .string(self.eventsChannel(channel))])
    }

    /// The hub's first local wildcard subscription of `pattern`: subscribe to its events channels' glob.
    public func patternGained(_ pattern: ChannelPattern) {
        let connection = self.state.withLockedValue { state -> RedisConnection? in
            state.desiredPatterns.insert(pattern)
            if state.connection != nil { state.patternsSubscribedBefore.insert(pattern) }
            return state.connection
        }
        connection?.sendWithoutReply(["PSUBSCRIBE", .string(self.eventsGlob(pattern))])
    }

    /// The hub's last local wildcard subscription of `pattern` left: unsubscribe.
    public func patternLost(_ pattern: ChannelPattern) {
        let connection = self.state.withLockedValue { state -> RedisConnection? in
            state.desiredPatterns.remove(pattern)
            state.patternsSubscribedBefore.remove(pattern)
            return state.connection
        }
        connection?.sendWithoutReply(["PUNSUBSCRIBE", .string(self.eventsGlob(pattern))])
    }

    /// Completes when every one of `channels` is subscribed on Redis; fails at once without a pub/sub connection.
    func ready(_ channels: [ChannelName]) -> EventLoopFuture<Void> {
        let result = self.state.withLockedValue { state -> EventLoopFuture<Void>? in
            guard state.connection != nil else { return nil }
            var futures: [EventLoopFuture<Void>] = []
            for channel in channels where !state.subscribed.contains(channel) {
                let promise = self.loop.makePromise(of: Void.self)
                state.waiters[channel, default: []].append(promise)
                futures.append(promise.futureResult)
            }
            return futures.isEmpty ? self.loop.makeSucceededVoidFuture() : EventLoopFuture.andAllSucceed(futures, on: self.loop)
        }
        return result ?? self.loop.makeFailedFuture(RedisError.unavailable)
    }

    /// A (new) pub/sub connection: subscribe to every wanted channel; channels this node dispatched before are filled
    /// in from history once subscribed.
    func resubscribe(on connection: RedisConnection) {
        let channels = self.state.withLockedValue { state -> [ChannelName] in
            state.connection = connection
            state.subscribed = []
            state.pending = [:]
            for channel in state.desired {
                state.pending[channel] = 1
                if state.lastDispatched[channel] != nil { state.backfilling[channel] = [] }
            }
            return Array(state.desired)
        }
        // Patterns subscribed on an earlier connection may have missed messages meanwhile; their channels cannot be
        // filled in (the node does not know them), so their subscribers are told of a gap.
        let (patterns, missed) = self.state.withLockedValue { state -> ([ChannelPattern], [ChannelPattern]) in
            let missed = Array(state.desiredPatterns.intersection(state.patternsSubscribedBefore))
            state.patternsSubscribedBefore = state.desiredPatterns
            return (Array(state.desiredPatterns), missed)
        }
        connection.closeFuture.whenComplete { _ in
            self.state.withLockedValue { state in
                if state.connection === connection { state.connection = nil }
            }
        }
        if !channels.isEmpty {
            connection.sendWithoutReply(["SUBSCRIBE"] + channels.map { .string(self.eventsChannel($0)) })
        }
        if !patterns.isEmpty {
            connection.sendWithoutReply(["PSUBSCRIBE"] + patterns.map { .string(self.eventsGlob($0)) })
        }
        for pattern in missed { _ = self.sink.patternGap(pattern) }
    }

    /// A value Redis pushed on the pub/sub connection (on its event loop).
    func push(_ value: RESPValue) {
        guard let parts = value.elements, parts.count >= 3, let kind = parts[0].string else { return }
        // A pattern subscription's message: [pmessage, glob, channel, payload].
        if kind == "pmessage" {
            guard parts.count == 4, let name = parts[2].string, let channel = self.channel(fromEvents: name),
                  let payload = parts[3].bytes
            else { return }
            self.patternMessage(payload, channel: channel)
            return
        }
        guard let name = parts[1].string, let channel = self.channel(fromEvents: name) else { return }
        switch kind {
        case "subscribe":
            self.subscribed(channel)
        case "message":
            guard var payload = parts[2].bytes, let tag = payload.readInteger(as: UInt8.self) else { return }
            switch tag {
            case UInt8(ascii: "m"):
                guard let colon = payload.readableBytesView.firstIndex(of: UInt8(ascii: ":")),
                      let idText = payload.readString(length: colon - payload.readerIndex), let id = UInt64(idText),
                      payload.readInteger(as: UInt8.self) != nil,
                      let message = RedisMessageCodec.decode(payload, channel: channel, id: id)
                else {
                    self.logger.warning("malformed message from Redis", metadata: ["comet.channel": "\(channel.rawValue)"])
                    return
                }
                self.live(message)
            case UInt8(ascii: "d"):
                _ = self.sink.channelDeleted(channel)
            case UInt8(ascii: "c"):
                _ = self.sink.streamsClosed(channel)
            default:
                return
            }
        default:
            return  // unsubscribe acknowledgements, pongs
        }
    }

    /// A message that reached this node through a wildcard pattern. A channel the node is subscribed to (or filling
    /// in) takes its messages from its own subscription, which reaches the pattern's subscribers too; until Redis
    /// confirms that subscription, its messages come from here (and are remembered, so that none comes twice).
    private func patternMessage(_ payload: ByteBuffer, channel: ChannelName) {
        var payload = payload
        guard payload.readInteger(as: UInt8.self) == UInt8(ascii: "m"),
              let colon = payload.readableBytesView.firstIndex(of: UInt8(ascii: ":")),
              let idText = payload.readString(length: colon - payload.readerIndex), let id = UInt64(idText),
              payload.readInteger(as: UInt8.self) != nil,
              let message = RedisMessageCodec.decode(payload, channel: channel, id: id)
        else { return }  // deletions and stream closes concern plain subscribers only
        let dispatch = self.state.withLockedValue { state -> Bool in
            if state.subscribed.contains(channel) || state.backfilling[channel] != nil { return false }
            guard state.desired.contains(channel) else { return true }
            guard id > state.lastDispatched[channel] ?? 0 else { return false }
            state.lastDispatched[channel] = id
            return true
        }
        if dispatch { _ = self.sink.dispatch(message) }
    }

    private func live(_ message: Message) {
        let dispatch = self.state.withLockedValue { state -> Bool in
            // Unsubscribed while this was on its way: a pattern's message, if any, carries it.
            guard state.desired.contains(message.channel) else { return false }
            if state.backfilling[message.channel] != nil {
                state.backfilling[message.channel]!.append(message)
                return false
            }
            guard message.id > state.lastDispatched[message.channel] ?? 0 else { return false }
            state.lastDispatched[message.channel] = message.id
            return true
        }
        if dispatch { _ = self.sink.dispatch(message) }
    }

    private func subscribed(_ channel: ChannelName) {
        let (waiters, backfillFrom) = self.state.withLockedValue { state -> ([EventLoopPromise<Void>], UInt64?) in
            state.pending[channel, default: 1] -= 1
            guard state.pending[channel]! <= 0, state.desired.contains(channel) else { return ([], nil) }
            state.pending.removeValue(forKey: channel)
            state.subscribed.insert(channel)
            let waiters = state.waiters.removeValue(forKey: channel) ?? []
            let from = state.backfilling[channel] != nil ? state.lastDispatched[channel] : nil
            return (waiters, from)
        }
        for waiter in waiters { waiter.succeed() }
        if let from = backfillFrom { self.backfill(channel, from: from) }
    }

    /// Dispatches what the channel got while this node was not subscribed, then what arrived live meanwhile, in order.
    /// While the command connection is not back yet, it tries again every 100 ms (for up to 10 s, after which the
    /// channel's subscribers are told of a gap).
    private func backfill(_ channel: ChannelName, from position: UInt64, attempt: Int = 0) {
        if attempt == 0 { self.backfills.withLockedValue { $0 += 1 } }
        self.replay(channel, position: position).whenComplete { result in
            if case .failure = result, attempt < 100,
               self.state.withLockedValue({ $0.backfilling[channel] != nil }) {
                self.loop.scheduleTask(in: .milliseconds(100)) {
                    self.backfill(channel, from: position, attempt: attempt + 1)
                }
                return
            }
            let (messages, gap) = self.state.withLockedValue { state -> ([Message], Bool) in
                guard let buffered = state.backfilling.removeValue(forKey: channel) else { return ([], false) }
                var last = state.lastDispatched[channel] ?? 0
                var out: [Message] = []
                var gap = true
                if case .success(let replay) = result {
                    gap = replay.gap
                    for message in replay.messages where message.id > last {
                        out.append(message)
                        last = message.id
                    }
                }
                for message in buffered where message.id > last {
                    out.append(message)
                    last = message.id
                }
                state.lastDispatched[channel] = last
                return (out, gap)
            }
            for message in messages { _ = self.sink.dispatch(message) }
            if gap { _ = self.sink.gap(channel) }
        }
    }
}
