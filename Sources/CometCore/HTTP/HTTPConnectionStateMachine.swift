import NIOCore

/// The life of one HTTP/1.1 server connection, without I/O: reading and parsing requests, asking for each request's
/// route before its body is read, buffering or streaming the body, holding pipelined requests while a response is in
/// progress, its single timeout, keep-alive, upgrades and draining. It returns what to do; the channel handler does it.
///
/// Driving it: after bytes arrive, ``read(_:)``; while it says ``ReadAction/parse``, call ``next()`` until it answers
/// ``Action/wait``. A ``Action/route(_:)`` must be answered with ``routed(_:)`` (or ``refused()``) before the next
/// call. When a response is complete, ``responseFinished(now:)``, then ``next()`` again for pipelined requests.
///
/// The model is NIO's `HTTPServerPipelineHandler` (one request answered at a time, pipelined ones held) and
/// Hummingbird's connection state handler (timeouts and quiescing as state, not flags scattered in the handler).
public struct HTTPConnectionStateMachine: Sendable {
    /// What the connection's single timer is for.
    public enum Timeout: Sendable, Equatable {
        /// Between requests: the connection closes at `limits.idle_timeout`.
        case idle
        /// A request started arriving and must be complete by `limits.request_timeout`.
        case request
        /// A held long poll answers when its time is up.
        case poll
    }

    /// How a routed request's body is read.
    public enum BodyPolicy: Sendable, Equatable {
        /// Buffered in full, at most `limit` bytes (a longer one is refused with `413` and the connection closed).
        case buffer(limit: Int)
        /// Handed out in parts as they arrive (``Action/bodyPart(_:)``, then ``Action/bodyEnd``).
        case stream

        /// Whether a body of `contentLength` bytes (nil: unknown, chunked) is read rather than refused at once.
        public func accepts(contentLength: Int?) -> Bool {
            switch self {
            case .buffer(let limit): return (contentLength ?? 0) <= limit
            case .stream: return true
            }
        }
    }

    /// What to do with bytes that arrived.
    public enum ReadAction: Sendable {
        /// Call ``next()`` until it answers ``Action/wait``.
        case parse
        /// Nothing: they were held (a response is in progress) or mean nothing (a held stream, a closed connection).
        case none
        /// The connection speaks another protocol now: these bytes are its.
        case upgraded(ByteBuffer)
        /// A client that pipelined more than ``maxHeldBytes`` behind a response in progress: close.
        case close
    }

    /// The next step of the request being read.
    public enum Action: Sendable {
        /// Nothing to do until more bytes arrive or the response in progress finishes.
        case wait
        /// A request head: route it, then answer with ``HTTPConnectionStateMachine/routed(_:)``.
        case route(RequestHead)
        /// A request whose body was buffered in full (empty when it has none): answer it.
        case request(RequestHead, body: ByteBuffer)
        /// The next part of a streamed request's body.
        case bodyPart(ByteBuffer)
        /// The streamed request's body is complete.
        case bodyEnd
        /// The request is malformed or refused: answer with this error and close.
        case fail(GatewayError)
    }

    /// What to do when the response to a request is complete.
    public enum FinishAction: Sendable, Equatable {
        /// Close the connection once the response is written.
        case close
        /// Keep the connection: arm the timer as told, then call ``next()`` (requests may be waiting behind it).
        case keepAlive(LazyDeadline<Timeout>.TimerAction)
    }

    /// What to do when the timer fires.
    public enum TimerFired: Sendable, Equatable {
        /// Nothing (the deadline was cleared or moved and re-armed).
        case none
        /// Arm the timer again at this time.
        case rearm(at: Int64)
        /// The connection sat idle: close it.
        case closeIdle
        /// A request did not arrive in full in time: answer `408` and close.
        case requestTimedOut
        /// A held long poll's time is up: answer it.
        case pollExpired
    }

    private enum State: Sendable {
        /// Between requests.
        case idle
        /// A head was returned in ``Action/route(_:)``; waiting for ``routed(_:)``.
        case routing(RequestHead)
        /// Reading a body into one buffer.
        case buffering(RequestHead, limit: Int, body: ByteBuffer)
        /// Handing a body out in parts.
        case streaming(RequestHead)
        /// The request is read; its response is in progress. Later bytes are held, unparsed.
        case answering
        /// The response is a stream that ends only with the connection: the client's bytes mean nothing.
        case holdingStream
        /// Another protocol owns the connection.
        case upgraded
        case closed
    }

    /// The most unparsed bytes held while a response is in progress; a client that pipelines more is closed.
    public static let maxHeldBytes = 64 * 1024

    private var state = State.idle
    private var parser: HTTPRequestParser
    /// Bytes read and not parsed yet: a partial request, or requests pipelined behind the one being answered.
    private var inbound: ByteBuffer?
    private var deadline = LazyDeadline<Timeout>()
    /// The request timer runs for the request being read.
    private var partialRequest = false
    /// Bytes arrived since the connection last became idle.
    private var bytesArrived = false
    /// The keep-alive of the request being answered (its own, and not draining).
    public private(set) var keepAlive = false
    /// Draining: no request after the current one.
    public private(set) var quiescing = false

    /// A connection whose requests are parsed within `limits`.
    public init(limits: HTTPRequestParser.Limits) {
        self.parser = HTTPRequestParser(limits: limits)
    }

    /// Whether the connection was closed (or refused) and takes nothing more.
    public var isClosed: Bool {
        if case .closed = self.state { return true }
        return false
    }

    /// The connection opened at `now`: it closes if no request starts within `idleTimeout`.
    public mutating func connectionOpened(now: Int64, idleTimeout: Int64) -> LazyDeadline<Timeout>.TimerAction {
        self.deadline.set(.idle, at: now + idleTimeout)
    }

    // MARK: - Reading

    /// Bytes arrived from the client.
    public mutating func read(_ bytes: ByteBuffer) -> ReadAction {
        switch self.state {
        case .closed, .holdingStream:
            return .none
        case .upgraded:
            return .upgraded(bytes)
        case .idle, .routing, .buffering, .streaming, .answering:
            break
        }
        self.bytesArrived = true
        if self.inbound == nil || self.inbound!.readableBytes == 0 {
            self.inbound = bytes
        } else {
            var bytes = bytes
            self.inbound!.writeBuffer(&bytes)
        }
        if case .answering = self.state {
            return self.inbound!.readableBytes > Self.maxHeldBytes ? .close : .none
        }
        return .parse
    }

    /// The next step of the request being read, from the bytes held.
    public mutating func next() -> Action {
        switch self.state {
        case .idle, .buffering, .streaming:
            break
        case .routing, .answering, .holdingStream, .upgraded, .closed:
            return .wait
        }
        guard self.inbound != nil else { return .wait }
        let event: HTTPRequestParser.Event?
        do {
            event = try self.parser.next(&self.inbound!)
        } catch {
            return self.fail(error)
        }
        guard let event else {
            if self.inbound!.readableBytes == 0 { self.inbound = nil }
            return .wait
        }
        switch (event, self.state) {
        case (.head(let head), .idle):
            self.state = .routing(head)
            self.keepAlive = head.keepAlive && !self.quiescing
            return .route(head)
        case (.body(let chunk), .buffering(let head, let limit, var body)):
            guard body.readableBytes + chunk.readableBytes <= limit else {
                return self.fail(Self.tooLarge(limit))
            }
            self.state = .closed  // no copy of `body` while appending
            if body.readableBytes == 0 {
                body = chunk  // the usual single chunk: no copy
            } else {
                var chunk = chunk
                body.writeBuffer(&chunk)
            }
            self.state = .buffering(head, limit: limit, body: body)
            return self.next()
        case (.end, .buffering(let head, _, let body)):
            self.requestRead()
            return .request(head, body: body)
        case (.body(let chunk), .streaming):
            return .bodyPart(chunk)
        case (.end, .streaming):
            self.requestRead()
            return .bodyEnd
        default:
            return self.fail(GatewayError(.badRequest, "unexpected request data"))
        }
    }

    /// The route of the head returned by ``Action/route(_:)`` reads its body this way. Returns the next step, as
    /// ``next()`` would.
    public mutating func routed(_ policy: BodyPolicy) -> Action {
        guard case .routing(let head) = self.state else { return .wait }
        switch policy {
        case .buffer(let limit):
            if let length = head.contentLength, length > limit {
                return self.fail(Self.tooLarge(limit))
            }
            if self.inbound == nil { self.inbound = Self.empty }
            if let body = self.parser.wholeBody(&self.inbound!) {
                // The usual request, arrived whole: answered at once, without body and end events.
                if self.inbound!.readableBytes == 0 { self.inbound = nil }
                self.requestRead()
                return .request(head, body: body)
            }
            self.state = .buffering(head, limit: limit, body: Self.empty)
        case .stream:
            self.state = .streaming(head)
        }
        return self.next()
    }

    /// The head returned by ``Action/route(_:)`` is refused: its answer closes the connection.
    public mutating func refused() {
        self.inbound = nil
        self.state = .closed
        self.keepAlive = false
        self.deadline.clear()
    }

    /// An empty buffer (one storage, shared).
    private static let empty = ByteBuffer()

    /// The end of one socket read: a request still incomplete must arrive in full within `requestTimeout` of `now`
    /// (a request that arrives whole in one read never touches the timer).
    public mutating func readComplete(now: Int64, requestTimeout: Int64) -> LazyDeadline<Timeout>.TimerAction {
        switch self.state {
        case .idle where !self.partialRequest && self.bytesArrived,
             .buffering where !self.partialRequest,
             .streaming where !self.partialRequest:
            self.partialRequest = true
            return self.deadline.set(.request, at: now + requestTimeout)
        default:
            return .none
        }
    }

    // MARK: - Answering

    /// The response is a stream that ends only with the connection (SSE, a forever frame): the client's later bytes
    /// are ignored.
    public mutating func holdStream() {
        if case .answering = self.state {
            self.state = .holdingStream
            self.inbound = nil
        }
    }

    /// A held long poll answers at `deadline` at the latest.
    public mutating func holdPoll(until deadline: Int64) -> LazyDeadline<Timeout>.TimerAction {
        self.deadline.set(.poll, at: deadline)
    }

    /// The response to the current request is complete (written, or handed to the writer in full). `idleTimeout`
    /// from `now` is when a kept connection that stays idle closes.
    public mutating func responseFinished(now: Int64, idleTimeout: Int64) -> FinishAction {
        switch self.state {
        case .answering, .holdingStream, .streaming, .buffering, .routing:
            break
        case .idle, .upgraded, .closed:
            return .close
        }
        let body = self.state
        guard self.keepAlive, !self.quiescing else {
            return self.closeAfterResponse()
        }
        if case .streaming = body {
            return self.closeAfterResponse()  // answered before its body was read: the rest cannot be skipped safely
        }
        if case .buffering = body {
            return self.closeAfterResponse()
        }
        self.state = .idle
        self.partialRequest = false
        self.bytesArrived = (self.inbound?.readableBytes ?? 0) > 0
        return .keepAlive(self.deadline.set(.idle, at: now + idleTimeout))
    }

    /// The request's answer ends the connection (an error, `Connection: close`, a draining gateway).
    public mutating func closeAfterResponse() -> FinishAction {
        self.inbound = nil
        self.state = .closed
        self.keepAlive = false
        self.deadline.clear()
        return .close
    }

    /// The connection switched protocols: the bytes already read behind the request are the new protocol's.
    public mutating func upgrade() -> ByteBuffer? {
        let pending = self.inbound.flatMap { $0.readableBytes > 0 ? $0 : nil }
        self.inbound = nil
        self.state = .upgraded
        self.deadline = LazyDeadline()
        return pending
    }

    // MARK: - Timer, drain, close

    /// The timer armed at the machine's request fired at `now`.
    public mutating func timerFired(now: Int64) -> TimerFired {
        switch self.deadline.fired(now: now) {
        case .none:
            return .none
        case .rearm(let at):
            return .rearm(at: at)
        case .expired(.idle):
            guard case .idle = self.state else { return .none }
            self.state = .closed
            return .closeIdle
        case .expired(.request):
            switch self.state {
            case .idle, .buffering, .streaming:
                self.inbound = nil
                self.state = .closed
                self.keepAlive = false
                return .requestTimedOut
            case .routing, .answering, .holdingStream, .upgraded, .closed:
                return .none
            }
        case .expired(.poll):
            return .pollExpired
        }
    }

    /// The gateway drains: no request after the current one. Returns true when the connection should close now
    /// (nothing in progress); otherwise the response in progress ends it.
    public mutating func quiesce() -> Bool {
        self.quiescing = true
        self.keepAlive = false
        guard case .idle = self.state else { return false }
        self.state = .closed
        return true
    }

    /// The connection closed: nothing more happens on it. Returns false when it was already closed.
    @discardableResult
    public mutating func closed() -> Bool {
        self.inbound = nil
        self.deadline = LazyDeadline()
        if case .closed = self.state { return false }
        self.state = .closed
        return true
    }

    private mutating func requestRead() {
        self.state = .answering
        self.deadline.clear()
        self.partialRequest = false
    }

    private mutating func fail(_ error: GatewayError) -> Action {
        self.inbound = nil
        self.state = .closed
        self.keepAlive = false
        self.deadline.clear()
        return .fail(error)
    }

    private static func tooLarge(_ limit: Int) -> GatewayError {
        GatewayError(.payloadTooLarge, "body larger than \(limit) bytes")
    }
}
