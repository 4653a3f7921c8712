import CometCore
import Logging
import NIOCore
import NIOExtras
import Synchronization

/// Serves one HTTP/1.1 connection of either listener: it carries out what its ``HTTPConnectionStateMachine`` says
/// (reading, routing, answering, keep-alive, timeouts, draining) and holds what answers the current request: a route
/// waiting for its body, a publish waiting for the broker, a subscription, a WebSocket session.
///
/// Requests are parsed straight from the socket's bytes and answered in order. Routes come from the listener's
/// ``RouteTable``; each says how its body is read before it is read.
///
/// Split by concern: what answers a request is in `HTTPConnectionHandler+Subscriptions.swift` (subscriptions,
/// WebSocket), `HTTPConnectionHandler+Proxy.swift` (the application behind the gateway) and
/// `HTTPConnectionHandler+Grip.swift`; its single deadline in `HTTPConnectionHandler+Timer.swift`; pipelined publish
/// answers in `HTTPConnectionHandler+Pipelining.swift`; writing responses in `HTTPConnectionHandler+Writing.swift`.
/// Members those files use are internal, not private.
final class HTTPConnectionHandler: ChannelInboundHandler, HeldAnswerReceiver {
    typealias InboundIn = ByteBuffer

    /// What answers the current request.
    enum Exchange {
        /// Nothing: between requests, or a response written at once.
        case none
        /// A route chosen from the head, waiting for its body.
        case routed(any Route, RequestTarget)
        /// An answer that comes when a future completes (a publish waiting for the broker, a held Bayeux connect);
        /// a held answer is abandoned if the connection closes first.
        case waiting((any HeldAnswer)?)
        /// A subscription (a stream, or a long poll).
        case holding(Subscription)
        /// A WebSocket after its handshake: the session reads everything from here on.
        case webSocket(WebSocketSession)
        /// A request passed through to the application.
        case proxying(ProxyExchange)
    }

    let role: ListenerRole
    let routes: RouteTable
    let directWrites: Bool
    let socketPath: SocketPath
    let gateway: GatewayContext
    var machine: HTTPConnectionStateMachine
    var exchange = Exchange.none
    var closed = false
    /// The loop over the machine's actions is running (a response finished inside it must not start another).
    var driving = false
    /// This connection's deadline on the loop's ``ConnectionTimers`` (0 until the handler is added).
    var timerID: UInt64 = 0
    var overLimit = false
    /// Pauses socket reads while a publish is answered (publisher connections only).
    let readGate: ReadGate?
    /// Responses of pipelined publishes waiting for the broker, written in order (publisher connections with a
    /// remote broker only: those with a ``readGate``).
    var pipelined = PipelinedResponses()
    /// An action that must wait until ``pipelined`` is written (a chained EPCP publish; nothing else that comes on
    /// the publisher listener waits).
    var afterPipelined: (action: RouteAction, head: RequestHead)?
    /// The request that filled ``pipelined`` is still being answered in the machine's eyes (later bytes held, at most
    /// its bound, no request timer) until a slot is free.
    var finishWhenRoom = false
    var context: ChannelHandlerContext?
    /// Writes this connection's responses and messages (straight to the socket when it can).
    var writer: ConnectionWriter?
    /// The subscriptions' side of the writer: the slow-consumer bound and writability.
    var outbound: ConnectionOutbound?
    /// The last poll answered on this keep-alive connection, still registered for the next one (see
    /// ``Subscription/canResume(_:transport:)``).
    var parkedPoll: Subscription?
    /// The client as the proxy's forwarding headers name it (set on the first proxied request).
    var forwardingClient: ProxyHeaders.Client?
    /// The request waiting for a ``HeldAnswer`` is a `HEAD` (only the answer's head is written).
    var answeringHead = false
    /// A GRIP stream hold's next link (`Grip-Link: <…>; rel=next`), while the stream is held.
    var nextLink: GripNextLink?
    /// The hub shard and `Date` header cache of this connection's event loop.
    var shard: LoopShard?
    var dateCache: HTTPDateCache?

    /// - Parameters:
    ///   - role: The listener the connection came from.
    ///   - routes: The listener's routes.
    ///   - gateway: What every connection shares.
    ///   - socketPath: What the listener put between this handler and the socket (see ``SocketPath``).
    ///   - readGate: The gate in front of this handler that pauses reads while a response waits for the broker.
    init(role: ListenerRole, routes: RouteTable, gateway: GatewayContext, socketPath: SocketPath, readGate: ReadGate? = nil) {
        self.role = role
        self.routes = routes
        self.readGate = readGate
        self.gateway = gateway
        self.socketPath = socketPath
        self.directWrites = socketPath.allowsDirectWrites && gateway.configuration.server.directWrites
        let limits = gateway.configuration.limits
        self.machine = HTTPConnectionStateMachine(
            limits: .init(maxURIBytes: limits.maxURIBytes, maxHeaderBytes: limits.maxHeaderBytes)
        )
    }

    var limits: GatewayConfiguration.Limits { self.gateway.configuration.limits }

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
        self.shard?.timers.clear(self.timerID)
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
        self.arm(self.machine.connectionOpened(now: self.now(context), idleTimeout: self.nanoseconds(self.limits.idleTimeout)))
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.writer?.detach()  // first: the descriptor is closed and may be reused
        switch self.role {
        case .subscriber: self.gateway.stats.publicConnections.subtract(1, ordering: .relaxed)
        case .publisher: self.gateway.stats.publisherConnections.subtract(1, ordering: .relaxed)
        }
        self.shard?.timers.clear(self.timerID)
        self.enterClosed()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.outbound?.writabilityChanged(context.channel.isWritable)
        if context.channel.isWritable, case .proxying(let exchange) = self.exchange { exchange.clientWritable() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // The drain deadline bounds the connection whatever it is doing (a request whose body stops arriving, a
        // client that does not read what is still queued for it): then it is closed.
        let drainTimeout = TimeAmount.nanoseconds(self.nanoseconds(self.gateway.configuration.server.drainTimeout))
        context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: drainTimeout) {
            context.close(promise: nil)
        }
        if self.machine.quiesce() {
            if self.pipelined.isEmpty {
                self.close(context: context)
            } else {
                self.pipelined.closeWhenWritten = true  // after the answers still waiting for the broker
            }
            return
        }
        switch self.exchange {
        case .holding(let subscription):
            subscription.quiesce(drainRetry: self.gateway.configuration.server.drainRetry)
        case .webSocket(let session):
            session.quiesce()
        case .none, .routed, .waiting, .proxying:
            break  // the response in progress closes the connection
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.close(context: context)  // socket errors: the connection is gone
    }

    // MARK: - Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.machine.read(self.unwrapInboundIn(data)) {
        case .parse:
            self.drive(context: context)
        case .none:
            break
        case .upgraded(var bytes):
            switch self.exchange {
            case .webSocket(let session): session.read(&bytes)
            case .proxying(let exchange): exchange.tunnelSend(bytes)
            case .none, .routed, .waiting, .holding: break
            }
        case .close:
            self.close(context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if self.role == .publisher, let shard = self.shard {
            self.gateway.hub.deliverLargeBatch(on: shard)  // a large fan-out from this read goes out now
        }
        self.arm(self.machine.readComplete(now: self.now(context), requestTimeout: self.nanoseconds(self.limits.requestTimeout)))
        context.fireChannelReadComplete()
    }

    /// Carries out the machine's actions until it waits for more bytes or for the response in progress.
    func drive(context: ChannelHandlerContext) {
        guard !self.driving else { return }
        self.driving = true
        defer { self.driving = false }
        var action = self.machine.next()
        while true {
            switch action {
            case .wait:
                return
            case .route(let head):
                guard let policy = self.route(head, context: context) else { return }
                action = self.machine.routed(policy)
                continue
            case .request(let head, let body):
                guard case .routed(let route, let target) = self.exchange else { return }
                self.exchange = .none
                self.carryOut(route.handle(head, target: target, body: body, eventLoop: context.eventLoop), head: head,
                              context: context)
            case .bodyPart(let part):
                if case .proxying(let exchange) = self.exchange { exchange.sendBody(part) }
            case .bodyEnd:
                if case .proxying(let exchange) = self.exchange { exchange.endBody() }
            case .fail(let error):
                self.fail(error, context: context)
                return
            }
            action = self.machine.next()
        }
    }

    /// Admits a head and chooses its route; nil when it was refused (and answered).
    func route(_ head: RequestHead, context: ChannelHandlerContext) -> HTTPConnectionStateMachine.BodyPolicy? {
        let admission = RequestAdmission(overLimit: self.overLimit, stats: self.gateway.stats).admit(head)
        if case .refuse(let refusal) = admission {
            self.refuse(refusal, context: context)
            return nil
        }
        switch self.routes.choose(head) {
        case .refuse(let response):
            self.refuse(response, context: context)
            return nil
        case .route(let route, let target):
            let policy = route.bodyPolicy(for: head)
            if case .continueFirst = admission, policy.accepts(contentLength: head.contentLength) {
                self.write(RequestAdmission.continueResponse)  // after the answers before it, if any wait
            }
            switch policy {
            case .buffer:
                self.exchange = .routed(route, target)
            case .stream:
                // A streaming route starts at once; its body follows as parts to what it started.
                self.carryOut(route.handle(head, target: target, body: ByteBuffer(), eventLoop: context.eventLoop),
                              head: head, context: context)
            }
            return policy
        }
    }

    // MARK: - Answering

    /// Does what the route said.
    func carryOut(_ action: RouteAction, head: RequestHead, context: ChannelHandlerContext) {
        if !self.pipelined.isEmpty && Self.waitsForPipelined(action) {
            self.afterPipelined = (action, head)
            return
        }
        switch action {
        case .respond(let response):
            self.finish(self.respond(response, head: head), context: context)
        case .published(let receipt):
            let keepAlive = self.machine.keepAlive
            self.write(PublishEndpoint.response(for: receipt, keepAlive: keepAlive, shard: self.shard!))
            self.finish(keepAlive, context: context)
        case .respondLater(let future):
            let logger = self.gateway.logger
            let response = future.recover { error in
                logger.error("publish failed", metadata: ["error": "\(error)"])
                return HTTPResponse(error: GatewayError(.serviceUnavailable, "broker unavailable"))
            }
            if self.readGate != nil && self.machine.keepAlive && !self.machine.quiescing {
                self.respondPipelined(response, head: head, context: context)
            } else {
                self.carryOut(.deferred(response.map { RouteAction.respond($0) }), head: head, context: context)
            }
        case .subscribe(let request, let corsHeaders):
            self.subscribe(request, corsHeaders: corsHeaders, context: context)
        case .webSocket(let endpoint, let accept):
            self.openWebSocket(endpoint, accept: accept, credentials: .init(head), context: context)
        case .proxy(let upstream):
            self.proxy(head, to: upstream, context: context)
        case .hold(let answer):
            self.exchange = .waiting(answer)
            self.answeringHead = head.method == .head
            answer.wait(self, on: context.eventLoop)
        case .deferred(let future):
            self.exchange = .waiting(nil)
            self.readGate?.hold()
            future.hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
                guard case .waiting = self.exchange else { return }
                self.exchange = .none
                switch result {
                case .success(let action):
                    self.carryOut(action, head: head, context: context)
                case .failure:
                    let error = GatewayError(.serviceUnavailable, "authorization unavailable")
                    self.finish(self.respond(HTTPResponse(error: error), head: head), context: context)
                }
            }
        }
    }

    func answered(_ body: ByteBuffer, by answer: any HeldAnswer) {
        guard !self.closed, let context = self.context else { return }  // closed first: it was abandoned
        self.exchange = .none
        let response = answer.render(body)
        self.finish(self.respond(response, onlyHead: self.answeringHead), context: context)
    }

    func finish(_ keepAlive: Bool, context: ChannelHandlerContext) {
        guard keepAlive else {
            _ = self.machine.closeAfterResponse()
            self.enterClosed()  // the response's write closes the connection
            return
        }
        if self.pipelined.isFull {
            // As many answers wait as may: this request stays the one being answered (later bytes are held within
            // the machine's bound, no request timer runs) and reads pause until the oldest answer is written.
            self.finishWhenRoom = true
            self.readGate?.hold()
            return
        }
        switch self.machine.responseFinished(now: self.now(context), idleTimeout: self.nanoseconds(self.limits.idleTimeout)) {
        case .close:
            // A response sent before its request's body was read (a proxied upload refused early), or draining: close.
            self.enterClosed()
            if self.pipelined.isEmpty {
                self.writer?.closeWhenWritten()
            } else {
                self.pipelined.closeWhenWritten = true  // after the answers still waiting for the broker
            }
        case .keepAlive(let timer):
            self.exchange = .none
            self.arm(timer)
            self.readGate?.release()
            self.drive(context: context)  // requests pipelined behind this one (a no-op inside the loop)
        }
    }

    func close(context: ChannelHandlerContext) {
        if self.closed { return }
        self.enterClosed()
        context.close(promise: nil)
    }

    /// Ends what answers the current request (every path that closes must unregister a held subscription).
    func enterClosed() {
        switch self.exchange {
        case .holding(let subscription):
            subscription.connectionClosed()
        case .webSocket(let session):
            session.connectionClosed()
        case .proxying(let exchange):
            exchange.cancel()
        case .waiting(let answer):
            answer?.abandon()
        case .none, .routed:
            break
        }
        self.parkedPoll?.connectionClosed()
        self.parkedPoll = nil
        self.afterPipelined = nil
        self.nextLink?.cancel()
        self.nextLink = nil
        self.exchange = .none
        self.closed = true
        self.machine.closed()
    }

}

@available(*, unavailable)
extension HTTPConnectionHandler: Sendable {}
