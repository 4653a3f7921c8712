import CometCore
import NIOCore
import Synchronization

/// One Bayeux client (a `clientId`), on the event loop where it shook hands: its subscriptions, the messages queued
/// for it between two `/meta/connect`s, the connect held while nothing is queued, and the `ack` extension's
/// unacknowledged batches.
///
/// Its deadline (one per session, on the loop's ``ConnectionTimers``) is either the held connect's end or, while no
/// connect is held, the session timeout after which the client is forgotten.
final class BayeuxSession: DeadlineOwner {
    /// A `/meta/connect` waiting for messages.
    struct Held {
        let serial: Int
        /// Where its answer goes.
        let reply: HoldClaim
        /// The replies of the batch's other messages, sent before the events.
        let before: [ByteBuffer]
        let id: JSONValue?
    }

    let clientID: String
    let service: BayeuxService
    let gateway: GatewayContext
    let shard: LoopShard
    let loop: any EventLoop
    /// The CometD `ack` extension is on (the handshake asked for it).
    let ackEnabled: Bool
    /// The cookies and `Authorization` of the client's latest request (relayed publishes, authorization).
    var credentials: Authorizer.Credentials
    /// Subscriptions by Bayeux name (`/chat/room1`, `/chat/*`).
    var subscriptions: [String: BayeuxSubscriber] = [:]
    private var queue = CircularBuffer<ByteBuffer>()
    /// Messages dropped from a full queue since the last connect reply.
    private var dropped = 0
    /// Channels (Bayeux names) whose messages the broker may have missed since the last connect reply.
    private var gapChannels: [String] = []
    /// The last message queued: a message that several subscriptions match arrives once.
    private var lastMessage: Message?
    private var held: Held?
    private var serial = 0
    private var connects = 0
    /// The number of the last connect reply (`ext.ack`) and the events of replies not acknowledged yet.
    private var ackBatch = 0
    private var unacked: [(batch: Int, events: [ByteBuffer])] = []
    private let timerID: UInt64
    /// When the deadline is set to fire (nil: not set), when the held connect's hold ends, when the session expires
    /// (uptime nanoseconds).
    private var timerAt: Int64?
    private var holdUntil: Int64 = 0
    private var expiresAt: Int64 = 0
    private(set) var ended = false

    init(clientID: String, service: BayeuxService, gateway: GatewayContext, shard: LoopShard, ackEnabled: Bool,
         credentials: Authorizer.Credentials) {
        self.clientID = clientID
        self.service = service
        self.gateway = gateway
        self.shard = shard
        self.loop = shard.loop
        self.ackEnabled = ackEnabled
        self.credentials = credentials
        self.timerID = shard.timers.makeID()
        gateway.stats.bayeuxSessions.add(1, ordering: .relaxed)
        self.armExpiry()
    }

    private var maxQueue: Int { self.service.configuration.maxQueue }

    // MARK: - Messages

    /// A message of a subscribed channel (from the hub, on this loop); true when a held connect should be answered
    /// at the end of the batch.
    func enqueue(_ message: Message) -> Bool {
        guard !self.ended, self.lastMessage !== message else { return false }
        self.lastMessage = message
        let event = message.frame(.bayeuxEvent)
        guard event.readableBytes > 0 else { return false }
        self.append(event)
        return self.held != nil
    }

    /// An event for this client alone (a service's answer).
    func deliver(_ event: ByteBuffer) {
        guard !self.ended else { return }
        self.append(event)
        self.flush()
    }

    private func append(_ event: ByteBuffer) {
        if self.queue.count >= self.maxQueue {
            self.queue.removeFirst()
            self.dropped += 1
        }
        self.queue.append(event)
    }

    /// The end of the hub's batch: a held connect takes what was queued.
    func flush() {
        if self.held != nil, !self.queue.isEmpty { self.answerHeld() }
    }

    /// The broker may have missed messages of `channel`: the next connect reply says so.
    func gap(_ channel: ChannelName) {
        let maxLength = self.gateway.configuration.limits.maxChannelNameLength
        guard !self.ended, let name = BayeuxChannel(gateway: channel, maxLength: maxLength)?.description else { return }
        if !self.gapChannels.contains(name) { self.gapChannels.append(name) }
        if self.held != nil { self.answerHeld() }
    }

    /// Messages that the wildcard `pattern` brings may have been missed: the next connect reply names the wildcard
    /// (`/chat/*`) among `ext.gap.channels`.
    func gap(pattern: ChannelPattern) {
        guard !self.ended else { return }
        let name = "/" + (pattern.prefix.map { $0.rawValue.split(separator: ".").joined(separator: "/") + "/" } ?? "")
            + (pattern.deep ? "**" : "*")
        if !self.gapChannels.contains(name) { self.gapChannels.append(name) }
        if self.held != nil { self.answerHeld() }
    }

    // MARK: - Connect

    /// A `/meta/connect` (the last of its batch; `before` holds the replies to the others), answered into `reply`:
    /// at once when it is the first after the handshake, something is queued, or the hold is 0; otherwise held until
    /// a message comes or the hold ends. A connect already held is answered first (the client replaced it).
    func connect(_ message: BayeuxMessage, before: [ByteBuffer], reply: HoldClaim) {
        // The connect it replaces is answered last: handing over an answer may carry out the next request of that
        // connection at once, a connect of this client among them, which must find this one settled.
        let replaced = self.takeHeld(reconnect: nil)
        defer { replaced?.claim.deliver(replaced!.answer) }
        guard !reply.isFinished else { return }  // its connection closed while the batch waited: events stay queued
        self.applyAck(message.ext)
        let hold = self.hold(for: message)
        if self.answersAtOnce(hold: hold) {
            // First the messages already posted to this loop are queued, so that this answer holds every message whose
            // publish was answered before the connect was sent (a held connect is answered by their delivery). The
            // connect it replaces is already taken out, so they come here. Delivering them may answer other clients'
            // connects and so run other requests, this client's among them: a disconnect ends the session; a connect
            // is held or answered, and this one is answered after it.
            self.gateway.hub.deliverPending(on: self.shard)
            guard !self.ended else {
                return reply.deliver(BayeuxEndpoint.array(before + [BayeuxEndpoint.unknownClient(message).bytes]))
            }
            guard !reply.isFinished else { return }
            self.connects += 1
            let draining = self.gateway.draining.load(ordering: .relaxed)
            self.armExpiry()
            reply.deliver(self.takeEvents(after: before, then: {
                $0.writeConnectReply(id: message.id, reconnect: draining ? "handshake" : nil, into: &$1)
            }))
            return
        }
        self.connects += 1
        self.serial += 1
        self.held = Held(serial: self.serial, reply: reply, before: before, id: message.id)
        self.holdUntil = Int64(self.loop.now.uptimeNanoseconds) + Int64(hold * 1e9)
        self.ensureTimer(at: self.holdUntil)
        reply.set(BayeuxSessions.Handle(loop: self.loop, session: NIOLoopBound(self, eventLoop: self.loop)), self.serial)
    }

    /// How long `connect` may be held, in seconds: the configured timeout, or the client's own shorter
    /// `advice.timeout`.
    func hold(for connect: BayeuxMessage) -> Double {
        var hold = self.service.configuration.timeout
        if case .number(let milliseconds)? = connect.advice?["timeout"], milliseconds >= 0 {
            hold = min(hold, milliseconds / 1000)
        }
        return hold
    }

    /// Whether a connect that may be held `hold` seconds is answered at once: the first after the handshake, something
    /// to tell (queued messages, a gap), no hold, or a graceful shutdown.
    func answersAtOnce(hold: Double) -> Bool {
        self.connects == 0 || !self.queue.isEmpty || self.dropped > 0 || !self.gapChannels.isEmpty || hold <= 0
            || self.gateway.draining.load(ordering: .relaxed)
    }

    /// The connection of the held connect `serial` closed: it is released without its events (they stay queued for
    /// the next connect).
    func abandon(_ serial: Int) {
        guard let held = self.held, held.serial == serial else { return }
        self.held = nil
        self.armExpiry()
    }

    private func answerHeld(reconnect: String? = nil) {
        if let (claim, answer) = self.takeHeld(reconnect: reconnect) { claim.deliver(answer) }
    }

    /// Ends the held connect: its answer, with the events it takes, for its claim (nil when none is held, or when
    /// its connection closed and the release is on its way: then the events stay queued). The session is settled
    /// when this returns; hand the answer over after every other change.
    private func takeHeld(reconnect: String?) -> (claim: HoldClaim, answer: ByteBuffer)? {
        guard let held = self.held else { return nil }
        self.held = nil
        self.armExpiry()
        guard !held.reply.isFinished else { return nil }
        return (held.reply, self.takeEvents(after: held.before, then: {
            $0.writeConnectReply(id: held.id, reconnect: reconnect, into: &$1)
        }))
    }

    /// A connect's answer, written as one JSON array into one buffer: `before` (the batch's other replies), what is
    /// queued (remembered until acknowledged, with `ack`), then the connect reply that `reply` writes (after the
    /// events are taken: it carries the ack batch and any gap).
    private func takeEvents(after before: [ByteBuffer], then reply: (BayeuxSession, inout ByteBuffer) -> Void) -> ByteBuffer {
        var answer = ByteBuffer()
        var size = 2 + Self.connectReplyBound + self.clientID.utf8.count + self.service.encodedAdvice.readableBytes
        for item in before { size += item.readableBytes + 1 }
        for event in self.queue { size += event.readableBytes + 1 }
        answer.reserveCapacity(size)
        answer.writeStaticString("[")
        for item in before {
            answer.writeImmutableBuffer(item)
            answer.writeStaticString(",")
        }
        if self.ackEnabled {
            self.ackBatch += 1
            if !self.queue.isEmpty { self.unacked.append((self.ackBatch, Array(self.queue))) }
            var kept = self.unacked.reduce(0) { $0 + $1.events.count }
            while kept > self.maxQueue, let oldest = self.unacked.first {
                self.unacked.removeFirst()
                kept -= oldest.events.count
                self.dropped += oldest.events.count
            }
        }
        while let event = self.queue.popFirst() {
            answer.writeImmutableBuffer(event)
            answer.writeStaticString(",")
        }
        reply(self, &answer)
        answer.writeStaticString("]")
        return answer
    }

    /// Room for the common connect reply besides its client id and advice (its `id` may need more: the buffer grows).
    private static let connectReplyBound = 96

    /// With `ack`: the client's `ext.ack` names the last connect reply it received; the events of later replies
    /// (lost on the way) go out again, before anything queued since. A connect without `ext.ack` acknowledges all.
    private func applyAck(_ ext: [String: JSONValue]?) {
        guard self.ackEnabled else { return }
        guard case .number(let number)? = ext?["ack"] else {
            self.unacked.removeAll()
            return
        }
        let acknowledged = Int(exactly: number.rounded(.down)) ?? Int.max
        let lost = self.unacked.filter { $0.batch > acknowledged }
        self.unacked.removeAll()
        for batch in lost.reversed() {
            for event in batch.events.reversed() { self.queue.prepend(event) }
        }
        while self.queue.count > self.maxQueue {
            self.queue.removeLast()
            self.dropped += 1
        }
    }

    /// Writes the connect reply into `buffer`.
    private func writeConnectReply(id: JSONValue?, reconnect: String?, into buffer: inout ByteBuffer) {
        if reconnect == nil, !self.ackEnabled, self.dropped == 0, self.gapChannels.isEmpty {
            // The common reply, written straight: {"channel":"/meta/connect","successful":true,"id":…,"clientId":…,
            // "advice":…}.
            buffer.writeStaticString(#"{"channel":"/meta/connect","successful":true"#)
            if let id {
                buffer.writeStaticString(#","id":"#)
                id.write(into: &buffer)
            }
            buffer.writeStaticString(#","clientId":""#)
            buffer.writeString(self.clientID)  // alphanumeric: nothing to escape
            buffer.writeStaticString(#"","advice":"#)
            buffer.writeImmutableBuffer(self.service.encodedAdvice)
            buffer.writeStaticString("}")
            return
        }
        var reply = BayeuxReply(channel: "/meta/connect", successful: true, id: id)
        reply.clientID = self.clientID
        if let reconnect {
            reply.advice = BayeuxService.advice(self.service.configuration, reconnect: reconnect)
        } else {
            reply.encodedAdvice = self.service.encodedAdvice
        }
        var ext: [String: JSONValue] = [:]
        if self.ackEnabled { ext["ack"] = .number(Double(self.ackBatch)) }
        if self.dropped > 0 || !self.gapChannels.isEmpty {
            ext["gap"] = .object(["dropped": .number(Double(self.dropped)),
                                  "channels": .array(self.gapChannels.map { .string($0) })])
            self.dropped = 0
            self.gapChannels.removeAll()
        }
        if !ext.isEmpty { reply.ext = .object(ext) }
        buffer.writeImmutableBuffer(reply.bytes)
    }

    // MARK: - Lifetime

    /// Starts the session timeout (no connect is held now).
    private func armExpiry() {
        guard !self.ended else { return }
        self.expiresAt = Int64(self.loop.now.uptimeNanoseconds) + Int64(self.service.configuration.sessionTimeout * 1e9)
        self.ensureTimer(at: self.expiresAt)
    }

    /// Makes the deadline fire no later than `deadline`. A deadline already set earlier is kept (it fires early and
    /// is set again then), so that a client polling quickly costs no timer update per poll.
    private func ensureTimer(at deadline: Int64) {
        if let timerAt = self.timerAt, timerAt <= deadline { return }
        self.timerAt = deadline
        self.shard.timers.set(self.timerID, at: deadline, owner: self)
    }

    /// The held connect's hold ended (it is answered), or the session timed out (it is forgotten); earlier than
    /// either, the deadline is set again.
    func deadlineReached() {
        self.timerAt = nil
        let now = Int64(self.loop.now.uptimeNanoseconds)
        if self.held != nil {
            if now >= self.holdUntil { self.answerHeld() } else { self.ensureTimer(at: self.holdUntil) }
        } else if now >= self.expiresAt {
            self.end(reconnect: nil)
        } else {
            self.ensureTimer(at: self.expiresAt)
        }
    }

    /// Forgets the client: its subscriptions leave the hub; a held connect is answered, with `reconnect` as its
    /// advice when given ("none" after a disconnect, "handshake" on shutdown).
    func end(reconnect: String?) {
        guard !self.ended else { return }
        let held = self.takeHeld(reconnect: reconnect ?? "handshake")
        defer { held?.claim.deliver(held!.answer) }  // last: see connect(_:before:reply:)
        self.ended = true
        self.shard.timers.clear(self.timerID)
        self.timerAt = nil
        for subscriber in self.subscriptions.values { self.unregister(subscriber) }
        self.subscriptions.removeAll()
        self.queue.removeAll()
        self.unacked.removeAll()
        self.service.sessions.remove(self.clientID)
        self.gateway.stats.bayeuxSessions.subtract(1, ordering: .relaxed)
    }

    func register(_ subscriber: BayeuxSubscriber) {
        if let pattern = subscriber.pattern {
            self.gateway.hub.add(subscriber, pattern: pattern, on: self.shard)
        } else {
            self.gateway.hub.add(subscriber, on: self.shard)
        }
    }

    func unregister(_ subscriber: BayeuxSubscriber) {
        if let pattern = subscriber.pattern {
            self.gateway.hub.remove(subscriber, pattern: pattern, on: self.shard)
        } else {
            self.gateway.hub.remove(subscriber, on: self.shard)
        }
    }
}

@available(*, unavailable)
extension BayeuxSession: Sendable {}
