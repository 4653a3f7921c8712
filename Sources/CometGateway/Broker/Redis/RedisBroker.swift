import CometCore
import CometRedis
import Crypto
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Prometheus

/// The broker of a gateway node among several: channels, ids and history live in Redis (``RedisScripts`` for the
/// layout), and every node holds one Redis subscription per channel that has local subscribers, through which it gets
/// every message of the channel, its own publishes included.
///
/// A subscription's replay waits until the node's Redis subscription of its channels is confirmed, then reads the
/// history: a message published in between arrives through both and the subscription keeps the first. When the
/// pub/sub connection comes back after a loss, each channel is subscribed again and filled in from its stream, in
/// order (live messages that arrive meanwhile wait); when history no longer holds all of it, the channel's
/// subscribers are told of a gap where they are. While Redis is unreachable, publishes and new
/// subscriptions fail at once (`503`) and held subscribers stay connected.
public final class RedisBroker: Broker, ChannelInterest {
    struct PubSubState {
        /// Channels with local subscribers.
        var desired: Set<ChannelName> = []
        /// Wildcard patterns with local subscribers (one Redis pattern subscription each).
        var desiredPatterns: Set<ChannelPattern> = []
        /// Patterns subscribed on a pub/sub connection (a later connection reports a gap for them).
        var patternsSubscribedBefore: Set<ChannelPattern> = []
        /// Subscribe commands sent and not yet acknowledged, per channel.
        var pending: [ChannelName: Int] = [:]
        /// Channels whose subscription Redis confirmed (and that are still wanted).
        var subscribed: Set<ChannelName> = []
        /// Replays waiting for a channel's subscription.
        var waiters: [ChannelName: [EventLoopPromise<Void>]] = [:]
        /// The newest id dispatched on this node, per channel.
        var lastDispatched: [ChannelName: UInt64] = [:]
        /// Channels being filled in after a reconnect, with the live messages that arrived meanwhile.
        var backfilling: [ChannelName: [Message]] = [:]
        var connection: RedisConnection?
    }

    private let commands: RedisClient
    private let pubsub: RedisClient
    let sink: any MessageSink
    private let limits: HistoryLimits
    private let prefix: String
    let logger: Logger
    let loop: any EventLoop
    let state = NIOLockedValueBox(PubSubState())
    private let publishSHA = RedisBroker.sha1(RedisScripts.publish)
    private let replaySHA = RedisBroker.sha1(RedisScripts.replay)
    let backfills = NIOLockedValueBox(0)
    /// Where round trips are recorded (`comet_broker_request_duration_seconds`).
    private let latency: DurationHistogram?

    /// - Parameters:
    ///   - keyPrefix: Prepended to every key and pub/sub channel (`comet:`).
    public init(address: RedisAddress, keyPrefix: String, limits: HistoryLimits, sink: any MessageSink,
                loop: any EventLoop, options: RedisClient.Options, logger: Logger, latency: DurationHistogram? = nil) {
        self.latency = latency
        self.sink = sink
        self.limits = limits
        self.prefix = keyPrefix
        self.logger = logger
        self.loop = loop
        self.commands = RedisClient(address: address, loop: loop, options: options, logger: logger)
        let state = self.state
        let box = NIOLockedValueBox<RedisBroker?>(nil)
        self.pubsub = RedisClient(
            address: address, loop: loop, options: options, logger: logger,
            onConnect: { connection in
                connection.receivePushes { value in box.withLockedValue { $0 }?.push(value) }.map {
                    box.withLockedValue { $0 }?.resubscribe(on: connection)
                }
            })
        _ = state
        box.withLockedValue { $0 = self }
    }

    /// Connects (and keeps reconnecting) both connections.
    public func start() {
        self.commands.start()
        self.pubsub.start()
    }

    public func stop() {
        self.commands.stop()
        self.pubsub.stop()
        let waiters = self.state.withLockedValue { state -> [EventLoopPromise<Void>] in
            defer { state.waiters = [:] }
            return state.waiters.values.flatMap { $0 }
        }
        for waiter in waiters { waiter.fail(RedisError.unavailable) }
    }

    /// Whether both connections to Redis are up.
    public var isConnected: Bool { self.commands.isConnected && self.pubsub.isConnected }
    /// Connections made again after a loss (both connections).
    public var reconnects: Int { self.commands.reconnects + self.pubsub.reconnects }
    /// Channels filled in from history after a reconnect.
    public var backfillCount: Int { self.backfills.withLockedValue { $0 } }

    // MARK: - Keys

    private func keys(_ channel: ChannelName) -> [RESPArgument] {
        let base = "\(self.prefix){\(channel.rawValue)}:"
        return [.string(base + "stream"), .string(base + "last"), .string(base + "floor"), .string(base + "bytes")]
    }

    private func deletedKey(_ channel: ChannelName) -> String { "\(self.prefix){\(channel.rawValue)}:deleted" }

    func eventsChannel(_ channel: ChannelName) -> String { "\(self.prefix){\(channel.rawValue)}:events" }

    /// The Redis glob of a pattern's events channels: `PREFIX{chat.*}:events` (the hub matches the exact depth; the
    /// prefix's glob characters are escaped; channel names have none).
    func eventsGlob(_ pattern: ChannelPattern) -> String {
        var prefix = ""
        for character in self.prefix {
            if "*?[]\\^".contains(character) { prefix.append("\\") }
            prefix.append(character)
        }
        return "\(prefix){\(pattern.prefix.map { $0.rawValue + "." } ?? "")*}:events"
    }

    func channel(fromEvents name: String) -> ChannelName? {
        let head = "\(self.prefix){"
        let tail = "}:events"
        guard name.hasPrefix(head), name.hasSuffix(tail), name.count > head.count + tail.count else { return nil }
        return try? ChannelName(validating: name.dropFirst(head.count).dropLast(tail.count))
    }

    private var limitArguments: [RESPArgument] {
        let age = max(0, self.limits.maxAge) * 1_000_000
        let ageMicros = age.isFinite && age < 9e15 ? Int64(age) : Int64(9e15)
        return [RESPArgument(self.limits.maxMessages), RESPArgument(self.limits.maxBytes), RESPArgument(ageMicros)]
    }

    private var expiryMilliseconds: Int64 {
        let ms = max(1, self.limits.maxAge) * 1000
        return ms.isFinite && ms < 9e15 ? Int64(ms) + 60_000 : Int64(9e15)
    }

    // MARK: - Broker

    public func publish(_ drafts: [MessageDraft], on eventLoop: any EventLoop) -> EventLoopFuture<[PublishReceipt]> {
        guard self.commands.isConnected else { return eventLoop.makeFailedFuture(RedisError.unavailable) }
        // Pipelined on one connection: Redis runs them in this order, so a channel's ids follow the drafts.
        let futures = drafts.map { draft -> EventLoopFuture<PublishReceipt> in
            let encoded = RedisMessageCodec.encode(draft)
            let arguments: [RESPArgument] = self.limitArguments + [
                RESPArgument(self.expiryMilliseconds), .string(self.eventsChannel(draft.channel)), .bytes(encoded),
                RESPArgument(draft.data.readableBytes),
            ]
            return self.evaluate(self.publishSHA, RedisScripts.publish,
                                 keys: self.keys(draft.channel) + [.string(self.deletedKey(draft.channel))],
                                 arguments: arguments).flatMapThrowing { reply in
                guard let parts = reply.elements, parts.count == 2, let id = parts[0].int, let nodes = parts[1].int,
                      id > 0
                else { throw RedisError.unexpectedReply("publish") }
                return PublishReceipt(channel: draft.channel, id: UInt64(id), subscribers: Int(nodes))
            }
        }
        return EventLoopFuture.whenAllSucceed(futures, on: eventLoop)
    }

    public func replay(channels: [ChannelName], positions: [UInt64]?, on eventLoop: any EventLoop)
        -> EventLoopFuture<[ChannelReplay]> {
        self.ready(channels).flatMap { _ in
            let futures = channels.enumerated().map { index, channel in
                self.replay(channel, position: positions?[index])
            }
            return EventLoopFuture.whenAllSucceed(futures, on: self.loop)
        }.hop(to: eventLoop)
    }

    /// One channel's replay: the head, and the retained messages after `position` with whether any may be missing.
    func replay(_ channel: ChannelName, position: UInt64?) -> EventLoopFuture<ChannelReplay> {
        let arguments = self.limitArguments + [.string(position.map { String($0) } ?? "")]
        return self.evaluate(self.replaySHA, RedisScripts.replay, keys: self.keys(channel), arguments: arguments)
            .flatMapThrowing { reply in
                guard let parts = reply.elements, parts.count == 4, let floor = parts[1].int, let now = parts[2].int,
                      let entries = parts[3].elements
                else { throw RedisError.unexpectedReply("replay") }
                let last = parts[0].int.map { UInt64($0) }
                var messages: [Message] = []
                messages.reserveCapacity(entries.count)
                for entry in entries {
                    guard let pair = entry.elements, pair.count == 2, let idText = pair[0].string,
                          let id = UInt64(idText.prefix { $0 != "-" }), let fields = pair[1].elements, fields.count >= 2,
                          let message = RedisMessageCodec.decode(fields[1].bytes ?? ByteBuffer(), channel: channel, id: id)
                    else { throw RedisError.unexpectedReply("stream entry") }
                    messages.append(message)
                }
                guard let last else {
                    // Nothing retained, no id issued (or all of it expired): positions older than the age limit may
                    // have missed messages that expired since.
                    let head = UInt64(now)
                    let maxAge = UInt64(max(0, min(self.limits.maxAge, 9e9)) * 1_000_000)
                    let gap = position.map { $0 > head || head - $0 > maxAge } ?? false
                    return ChannelReplay(head: head, messages: [], gap: gap)
                }
                let gap = position.map { $0 < UInt64(floor) || $0 > last } ?? false
                return ChannelReplay(head: last, messages: messages, gap: gap)
            }
    }

    public func info(_ channel: ChannelName, on eventLoop: any EventLoop) -> EventLoopFuture<ChannelInfo?> {
        let keys = self.keys(channel)
        let base = "\(self.prefix){\(channel.rawValue)}:"
        let count = self.commands.send(["XLEN", keys[0]])
        let last = self.commands.send(["GET", keys[1]])
        let bytes = self.commands.send(["GET", keys[3]])
        let deleted = self.commands.send(["EXISTS", .string(base + "deleted")])
        return count.and(last).and(bytes).and(deleted).map { values in
            let (((count, last), bytes), deleted) = values
            guard let lastID = last.int, deleted.int != 1 else { return nil }
            return ChannelInfo(retainedMessages: Int(count.int ?? 0), retainedBytes: Int(bytes.int ?? 0),
                               lastID: UInt64(lastID))
        }.hop(to: eventLoop)
    }

    public func delete(_ channel: ChannelName, on eventLoop: any EventLoop) -> EventLoopFuture<Bool> {
        let keys = self.keys(channel)
        let base = "\(self.prefix){\(channel.rawValue)}:"
        let script = """
            local last = redis.call('GET', KEYS[2])
            local existed = last and redis.call('EXISTS', KEYS[5]) == 0
            redis.call('DEL', KEYS[1], KEYS[4])
            if last then
              redis.call('SET', KEYS[3], last)
              redis.call('SET', KEYS[5], '1')
              for i = 2, 5 do redis.call('PEXPIRE', KEYS[i], ARGV[1]) end
            end
            local nodes = redis.call('PUBLISH', ARGV[2], 'd')
            if existed or nodes > 0 then return 1 end
            return 0
            """
        return self.commands.send(["EVAL", .string(script), "5"] + keys + [.string(base + "deleted"),
                                   RESPArgument(self.expiryMilliseconds), .string(self.eventsChannel(channel))])
            .map { $0.int == 1 }.hop(to: eventLoop)
    }

    public func closeStreams(_ channel: ChannelName, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        self.commands.send(["PUBLISH", .string(self.eventsChannel(channel)), "c"]).map { _ in }.hop(to: eventLoop)
    }

    /// `EVALSHA`, and `EVAL` when Redis does not have the script (a restarted Redis), which also loads it.
    private func evaluate(_ sha: String, _ script: String, keys: [RESPArgument], arguments: [RESPArgument])
        -> EventLoopFuture<RESPValue> {
        let tail = [RESPArgument(keys.count)] + keys + arguments
        let started = ContinuousClock.now
        let latency = self.latency
        return self.commands.send(["EVALSHA", .string(sha)] + tail).flatMapError { error in
            if case RedisError.reply(let text) = error, text.hasPrefix("NOSCRIPT") {
                return self.commands.send(["EVAL", .string(script)] + tail)
            }
            return self.loop.makeFailedFuture(error)
        }.always { result in
            if case .success = result { latency?.record(ContinuousClock.now - started) }
        }
    }

    private static func sha1(_ text: String) -> String {
        Insecure.SHA1.hash(data: Array(text.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
