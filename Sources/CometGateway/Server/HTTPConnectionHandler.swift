import CometCore
import Logging
import NIOCore
import NIOExtras
import Synchronization

/// Serves one HTTP/1.1 connection of either listener: reads requests (bounded in size and time), routes them, writes
/// responses, and holds the connection while a subscription or a publish is in progress.
///
/// Requests are parsed by ``HTTPRequestParser`` straight from the socket's bytes and answered in order. While a
/// response is pending, pipelined bytes are held unparsed (at most 64 KiB) and socket reads pause for publishes
/// (through the connection's ``ReadGate``); a held stream ignores anything the client sends.
final class HTTPConnectionHandler: ChannelInboundHandler, SubscriptionOwner, WebSocketSessionOwner, DeadlineOwner {
    typealias InboundIn = ByteBuffer

    private enum State {
        /// Waiting for a request.
        case idle
        /// Reading a request's body.
        case receiving(RequestHead, body: ByteBuffer)
        /// Waiting for a publish endpoint's answer.
        case waiting(keepAlive: Bool)
        /// Holding a subscription.
        case holding(Subscription)
        /// A WebSocket after its handshake: the session reads everything from here on.
        case webSocket(WebSocketSession)
        /// Closing.
        case closed
    }

    private let role: ListenerRole
    private let directWrites: Bool
    private let gateway: GatewayContext
    private var state = State.idle
    private var parser: HTTPRequestParser
    /// Bytes read but not parsed yet: a partial request, or requests pipelined behind the one being answered.
    private var inbound: ByteBuffer?
    /// The parse loop is running (a response finished inside it must not start another).
    private var parsing = false
    /// What the connection's single timeout is for.
    private enum Timeout: Sendable, Equatable {
        case idle, request, poll
    }

    private var deadline = LazyDeadline<Timeout>()
    /// This connection's deadline on the loop's ``ConnectionTimers`` (0 until the handler is added).
    private var timerID: UInt64 = 0
    private var partialRequest = false
    /// Bytes arrived since the connection last became idle.
    private var bytesArrived = false
    private var overLimit = false
    private var quiescing = false
    /// Pauses socket reads while a publish is answered (publisher connections only).
    private let readGate: ReadGate?
    private var context: ChannelHandlerContext?
    /// Writes this connection's responses and messages (straight to the socket when it can).
    private var writer: ConnectionWriter?
    /// The subscriptions' side of the writer: the slow-consumer bound and writability.
    private var outbound: ConnectionOutbound?
    /// The last poll answered on this keep-alive connection, still registered for the next one (see
    /// ``Subscription/canResume(_:)``).
    private var parkedPoll: Subscription?
    /// The hub shard and `Date` header cache of this connection's event loop.
    private var shard: LoopShard?
    private var dateCache: HTTPDateCache?
    /// The most unparsed bytes held while a poll is answered; a client that pipelines more is closed.
    private static let maxHeldBytes = 64 * 1024

    /// - Parameters:
    ///   - role: The listener the connection came from.
    ///   - gateway: What every connection shares.
    ///   - directWrites: Whether writes may go straight to the socket: only when nothing between this handler and the
    ///     socket transforms outbound bytes.
    ///   - readGate: The gate in front of this handler that pauses reads while a response waits for the broker.
    init(role: ListenerRole, gateway: GatewayContext, directWrites: Bool, readGate: ReadGate? = nil) {
        self.role = role
        self.readGate = readGate
        self.gateway = gateway
        self.directWrites = directWrites
        let limits = gateway.configuration.limits
        self.parser = HTTPRequestParser(limits: .init(maxURIBytes: limits.maxURIBytes, maxHeaderBytes: limits.maxHeaderBytes))
    }

    private var limits: GatewayConfiguration.Limits { self.gateway.configuration.limits }

    // MARK: - Connection lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.writer = ConnectionWriter(
            context: context,
            stats: self.gateway.stats,
            closeTimeout: .nanoseconds(Int64(self.limits.requestTimeout * 1_000_000_000))
        )
        let shard = self.gateway.hub.shard(for: context.eventLoop)
        self.shard = shard
        self.timerID = shard.timers.makeID()
        self.dateCache = shard.dateCache
        self.outbound = ConnectionOutbound(writer: self.writer!, shard: shard, maxBytes: self.limits.maxOutboundBytes)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // The stored context and the context's reference to this handler form a cycle: break it, or every
        // connection leaks its pipeline.
        self.context = nil
        self.writer?.detach()
        self.writer = nil
        self.outbound = nil
        self.cancelDeadline()
        self.enterClosed()
    }

    func channelActive(context: ChannelHandlerContext) {
        switch self.role {
        case .subscriber:
            let open = self.gateway.stats.publicConnections.add(1, ordering: .relaxed).newValue
            self.overLimit = open > self.gateway.maxConnections
        case .publisher:
            self.gateway.stats.publisherConnections.add(1, ordering: .relaxed)
        }
        if self.directWrites, let descriptor = SocketDescriptor.of(context.channel) {
            self.writer?.writeDirectly(to: descriptor)
        }
        self.setDeadline(.idle, in: self.limits.idleTimeout, context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.writer?.detach()  // first: the descriptor is closed and may be reused
        switch self.role {
        case .subscriber: self.gateway.stats.publicConnections.subtract(1, ordering: .relaxed)
        case .publisher: self.gateway.stats.publisherConnections.subtract(1, ordering: .relaxed)
        }
        self.cancelDeadline()
        self.enterClosed()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.outbound?.writabilityChanged(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        self.quiescing = true
        // The drain deadline bounds the connection whatever it is doing (a request whose body stops arriving, a
        // client that does not read what is still queued for it): then it is closed.
        let drainTimeout = TimeAmount.nanoseconds(Int64(self.gateway.configuration.server.drainTimeout * 1_000_000_000))
        context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: drainTimeout) {
            context.close(promise: nil)
        }
        switch self.state {
        case .idle:
            context.close(promise: nil)
        case .holding(let subscription):
            subscription.quiesce(drainRetry: self.gateway.configuration.server.drainRetry)
        case .webSocket(let session):
            session.quiesce()
        case .receiving, .waiting, .closed:
            break  // the response in progress closes the connection
        }
    }

    // MARK: - Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = self.unwrapInboundIn(data)
        self.bytesArrived = true
        switch self.state {
        case .closed:
            return
        case .holding(let subscription) where subscription.isStream:
            return  // nothing a client sends on a held stream is meaningful
        case .webSocket(let session):
            session.read(&bytes)
            return
        default:
            break
        }
        if self.inbound == nil || self.inbound!.readableBytes == 0 {
            self.inbound = bytes
        } else {
            self.inbound!.writeBuffer(&bytes)
        }
        switch self.state {
        case .idle, .receiving:
            self.parseInbound(context: context)
        case .waiting, .holding:
            // Pipelined behind a response in progress: parsed once it is done.
            if self.inbound!.readableBytes > Self.maxHeldBytes {
                self.close(context: context)
            }
        case .webSocket, .closed:
            break
        }
    }

    /// Parses and handles what `inbound` holds, for as long as the connection can take a request.
    private func parseInbound(context: ChannelHandlerContext) {
        guard !self.parsing else { return }
        self.parsing = true
        defer { self.parsing = false }
        while true {
            switch self.state {
            case .idle, .receiving:
                break
            case .waiting, .holding, .webSocket, .closed:
                return
            }
            guard self.inbound != nil else { return }
            let event: HTTPRequestParser.Event?
            do {
                event = try self.parser.next(&self.inbound!)
            } catch {
                self.inbound = nil
                self.deadline.clear()
                self.respond(HTTPResponse(error: error, close: true), keepAlive: false, context: context)
                return
            }
            guard let event else {
                if self.inbound!.readableBytes == 0 { self.inbound = nil }
                return
            }
            self.process(event, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if self.role == .publisher, let shard = self.shard {
            self.gateway.hub.deliverLargeBatch(on: shard)  // a large fan-out from this read goes out now
        }
        // A request still incomplete at the end of a read must arrive in full within request_timeout of now.
        // (A request that arrives whole in one read never touches the timer.)
        switch self.state {
        case .idle where !self.partialRequest && self.bytesArrived,
             .receiving where !self.partialRequest:
            self.partialRequest = true
            self.setDeadline(.request, in: self.limits.requestTimeout, context: context)
        default:
            break
        }
        context.fireChannelReadComplete()
    }

    private func process(_ event: HTTPRequestParser.Event, context: ChannelHandlerContext) {
        switch (event, self.state) {
        case (.head(let head), .idle):
            switch RequestAdmission(limits: self.limits, overLimit: self.overLimit, stats: self.gateway.stats).admit(head) {
            case .refuse(let refusal):
                self.inbound = nil
                self.respond(refusal, keepAlive: false, context: context)
                return
            case .continueFirst:
                self.writer!.writeAndFlush(RequestAdmission.continueResponse)
            case .admit:
                break
            }
            if let body = self.parser.wholeBody(&self.inbound!) {
                // The usual request, arrived whole: dispatched now, without its body and end events.
                self.deadline.clear()
                self.partialRequest = false
                self.dispatch(head: head, body: body, context: context)
                return
            }
            self.state = .receiving(head, body: ByteBuffer())
        case (.body(let chunk), .receiving(let head, var body)):
            guard body.readableBytes + chunk.readableBytes <= self.limits.maxPublishBodyBytes else {
                let error = GatewayError(.payloadTooLarge, "body larger than \(self.limits.maxPublishBodyBytes) bytes")
                self.inbound = nil
                self.respond(HTTPResponse(error: error, close: true), keepAlive: false, context: context)
                return
            }
            self.state = .closed  // avoid a copy of `body` while appending
            if body.readableBytes == 0 {
                body = chunk  // the usual single chunk: no copy (a published message copies what it keeps)
            } else {
                var chunk = chunk
                body.writeBuffer(&chunk)
            }
            self.state = .receiving(head, body: body)
        case (.end, .receiving(let head, let body)):
            self.deadline.clear()
            self.partialRequest = false
            self.dispatch(head: head, body: body, context: context)
        default:
            self.close(context: context)
        }
    }

    // MARK: - Dispatch

    private func dispatch(head: RequestHead, body: ByteBuffer, context: ChannelHandlerContext) {
        let keepAlive = head.keepAlive && !self.quiescing
        switch Router(gateway: self.gateway).route(head: head, body: body, role: self.role, eventLoop: context.eventLoop) {
        case .respond(let response):
            self.respond(response, keepAlive: keepAlive, head: head, context: context)
            self.requestFinished(keepAlive: keepAlive && !response.close, context: context)
        case .published(let receipt):
            self.respondPublished(receipt, keepAlive: keepAlive)
            self.requestFinished(keepAlive: keepAlive, context: context)
        case .respondLater(let future):
            self.state = .waiting(keepAlive: keepAlive)
            self.readGate?.hold()
            future.hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
                guard case .waiting(let keepAlive) = self.state else { return }
                let response: HTTPResponse
                switch result {
                case .success(let value):
                    response = value
                case .failure(let error):
                    self.gateway.logger.error("publish failed", metadata: ["error": "\(error)"])
                    response = HTTPResponse(error: GatewayError(.serviceUnavailable, "broker unavailable"))
                }
                self.respond(response, keepAlive: keepAlive, head: head, context: context)
                self.requestFinished(keepAlive: keepAlive && !response.close, context: context)
            }
        case .subscribe(let request, let corsHeaders):
            self.subscribe(request, corsHeaders: corsHeaders, keepAlive: keepAlive, context: context)
        case .webSocket(let request, let accept):
            self.openWebSocket(request, accept: accept, context: context)
        }
    }

    private func subscribe(_ request: SubscribeRequest, corsHeaders: [(String, String)], keepAlive: Bool,
                           context: ChannelHandlerContext) {
        let transport = SubscriberTransport(for: request, configuration: self.gateway.configuration)
        if let parked = self.parkedPoll {
            self.parkedPoll = nil
            if parked.canResume(request, transport: transport) {
                self.state = .holding(parked)
                parked.resume(pollTimeout: request.pollTimeout, keepAlive: keepAlive, extraHeaders: corsHeaders)
                return
            }
            parked.connectionClosed()
        }
        let subscription = Subscription(request: request, transport: transport, keepAlive: keepAlive,
                                        extraHeaders: corsHeaders, shard: self.shard!, outbound: self.outbound!,
                                        owner: self, gateway: self.gateway)
        self.state = .holding(subscription)
        subscription.start(gateway: self.gateway, request: request, eventLoop: context.eventLoop)
    }

    /// Completes a WebSocket handshake (already validated by the router) and hands the connection to a session.
    private func openWebSocket(_ request: SubscribeRequest, accept: String, context: ChannelHandlerContext) {
        self.cancelDeadline()
        self.readGate?.release()
        self.writer!.writeAndFlush(WebSocketSession.switchingProtocols(accept: accept))
        let session = WebSocketSession(gateway: self.gateway, shard: self.shard!, outbound: self.outbound!,
                                       eventLoop: context.eventLoop, owner: self)
        self.state = .webSocket(session)
        session.start(channels: request.channels, cursor: request.cursor)
        // Frames the client sent right behind its handshake.
        if var pending = self.inbound, pending.readableBytes > 0, case .webSocket = self.state {
            self.inbound = nil
            session.read(&pending)
        }
        self.inbound = nil
    }

    func webSocketClosed() {
        self.state = .closed
    }

    func streamEnded(_ subscription: Subscription, final: ByteBuffer) {
        self.outbound?.end(with: final)
    }

    func subscriptionFailed(_ subscription: Subscription, error: GatewayError) {
        guard let context = self.context else { return }
        var response = HTTPResponse(error: error, close: true)
        response.headers.append(("Retry-After", "1"))
        self.respond(response, keepAlive: false, context: context)
    }

    func subscriptionFinishedResponse(keepAlive: Bool) {
        guard let context = self.context else { return }
        if case .holding(let subscription) = self.state, subscription.isParked {
            if keepAlive && !self.quiescing {
                self.parkedPoll = subscription
            } else {
                subscription.connectionClosed()
            }
        }
        self.requestFinished(keepAlive: keepAlive, context: context)
    }

    /// The response to the current request was written in full.
    private func requestFinished(keepAlive: Bool, context: ChannelHandlerContext) {
        guard keepAlive, !self.quiescing else {
            self.enterClosed()
            return  // the response's write closes the connection
        }
        self.state = .idle
        self.partialRequest = false
        self.bytesArrived = (self.inbound?.readableBytes ?? 0) > 0
        self.setDeadline(.idle, in: self.limits.idleTimeout, context: context)
        self.readGate?.release()
        if self.inbound != nil {
            self.parseInbound(context: context)  // requests pipelined behind this one (a no-op inside the parse loop)
        }
    }

    // MARK: - Writing

    private func respond(_ response: HTTPResponse, keepAlive: Bool, head: RequestHead? = nil,
                         context: ChannelHandlerContext) {
        let keepAlive = keepAlive && !response.close && !self.quiescing
        var bytes = response.serialize(keepAlive: keepAlive, date: self.dateCache!.current)
        if head?.method == .head, let body = response.body {
            bytes.moveWriterIndex(to: bytes.writerIndex - body.readableBytes)  // the head of a GET, Content-Length included
        }
        self.writer!.writeAndFlush(bytes)
        if !keepAlive {
            self.enterClosed()
            self.writer!.closeWhenWritten()
        }
    }

    /// Answers a single-message publish: the response is rendered into the loop's reusable response buffer, which
    /// is written straight to the socket (or, when the socket lags, handed to NIO, and the next response gets a new
    /// buffer by copy-on-write).
    private func respondPublished(_ receipt: PublishReceipt, keepAlive: Bool) {
        let keepAlive = keepAlive && !self.quiescing
        self.writer!.writeAndFlush(PublishEndpoint.response(for: receipt, keepAlive: keepAlive, shard: self.shard!))
        if !keepAlive {
            self.enterClosed()
            self.writer!.closeWhenWritten()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.close(context: context)  // socket errors: the connection is gone
    }

    private func close(context: ChannelHandlerContext) {
        if case .closed = self.state { return }
        self.enterClosed()
        context.close(promise: nil)
    }

    /// Moves to `.closed`, ending a held subscription first (every path that closes must unregister it).
    private func enterClosed() {
        switch self.state {
        case .holding(let subscription):
            subscription.connectionClosed()
        case .webSocket(let session):
            session.connectionClosed()
        case .idle, .receiving, .waiting, .closed:
            break
        }
        self.parkedPoll?.connectionClosed()
        self.parkedPoll = nil
        self.state = .closed
    }

    // MARK: - Timers

    /// Holds a poll until `seconds` from now (called by the poll subscription once it waits for live messages).
    func holdPoll(for seconds: Double) {
        guard let context = self.context else { return }
        self.setDeadline(.poll, in: seconds, context: context)
    }

    private func setDeadline(_ timeout: Timeout, in seconds: Double, context: ChannelHandlerContext) {
        let deadline = context.eventLoop.now + .nanoseconds(Int64(seconds * 1_000_000_000))
        if case .arm(let at) = self.deadline.set(timeout, at: Int64(deadline.uptimeNanoseconds)) {
            self.arm(at: at, context: context)
        }
    }

    private func arm(at uptimeNanoseconds: Int64, context: ChannelHandlerContext) {
        self.shard?.timers.set(self.timerID, at: uptimeNanoseconds, owner: self)
    }

    /// Clears the deadline and takes it off the loop's timers (nothing armed any more).
    private func cancelDeadline() {
        self.deadline = LazyDeadline()
        self.shard?.timers.clear(self.timerID)
    }

    func deadlineReached() {
        guard let context = self.context else { return }
        self.timerFired(context: context)
    }

    private func timerFired(context: ChannelHandlerContext) {
        switch self.deadline.fired(now: Int64(context.eventLoop.now.uptimeNanoseconds)) {
        case .none:
            break
        case .rearm(let at):
            self.arm(at: at, context: context)
        case .expired(.idle):
            if case .idle = self.state { self.close(context: context) }
        case .expired(.request):
            switch self.state {
            case .idle, .receiving:
                self.inbound = nil
                let error = GatewayError(.requestTimeout, "request not received in time")
                self.respond(HTTPResponse(error: error, close: true), keepAlive: false, context: context)
            default:
                break
            }
        case .expired(.poll):
            if case .holding(let subscription) = self.state {
                subscription.pollTimedOut()
            }
        }
    }
}

@available(*, unavailable)
extension HTTPConnectionHandler: Sendable {}
