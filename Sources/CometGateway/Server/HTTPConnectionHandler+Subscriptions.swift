import CometCore
import NIOCore

/// Subscriptions and WebSocket sessions held on a gateway connection.
extension HTTPConnectionHandler: SubscriptionOwner, WebSocketSessionOwner {
    func subscribe(_ request: SubscribeRequest, corsHeaders: [(String, String)], context: ChannelHandlerContext) {
        let keepAlive = self.machine.keepAlive
        let transport = SubscriberTransport(for: request, configuration: self.gateway.configuration)
        if let parked = self.parkedPoll {
            // A poll answered at once from what its connection collected first takes the messages already posted to
            // this loop, so that it holds every message whose publish was answered before it was sent (a poll that
            // waits is answered by their delivery). A parked poll only collects them: nothing here re-enters.
            if !parked.pollBatch.isEmpty || request.pollTimeout <= 0 {
                self.gateway.hub.deliverPending(on: self.shard!)
            }
            self.parkedPoll = nil
            if parked.canResume(request, transport: transport) {
                self.exchange = .holding(parked)
                parked.resume(pollTimeout: request.pollTimeout, keepAlive: keepAlive, extraHeaders: corsHeaders)
                return
            }
            parked.connectionClosed()
        }
        let subscription = Subscription(request: request, transport: transport, keepAlive: keepAlive,
                                        extraHeaders: corsHeaders, shard: self.shard!, outbound: self.outbound!,
                                        owner: self, gateway: self.gateway)
        self.exchange = .holding(subscription)
        if subscription.isStream { self.machine.holdStream() }  // nothing a client sends on a stream means anything
        subscription.start(gateway: self.gateway, request: request, eventLoop: context.eventLoop)
    }

    /// Completes a WebSocket handshake (already validated by the route) and hands the connection to a session that
    /// serves `endpoint`'s protocol.
    func openWebSocket(_ endpoint: WebSocketEndpoint, accept: String, credentials: Authorizer.Credentials,
                       context: ChannelHandlerContext) {
        let pending = self.machine.upgrade()
        self.shard?.timers.clear(self.timerID)
        self.readGate?.release()
        self.writer!.writeAndFlush(WebSocketSession.switchingProtocols(accept: accept))
        let session = WebSocketSession(gateway: self.gateway, shard: self.shard!, outbound: self.outbound!,
                                       eventLoop: context.eventLoop, owner: self)
        session.credentials = credentials
        self.exchange = .webSocket(session)
        session.start()
        switch endpoint {
        case .channels(let request):
            let channels = WebSocketChannels(session: session)
            session.application = channels
            channels.start(channels: request.channels, cursor: request.cursor)
        case .bayeux:
            session.application = BayeuxSocket(session: session)
        }
        // Frames the client sent right behind its handshake.
        if var pending, case .webSocket = self.exchange {
            session.read(&pending)
        }
    }

    func webSocketClosed() {
        self.exchange = .none
        self.closed = true
        self.machine.closed()
    }

    func streamEnded(_ subscription: Subscription, final: ByteBuffer) {
        self.outbound?.end(with: final)
    }

    func subscriptionFailed(_ subscription: Subscription, error: GatewayError) {
        guard let context = self.context else { return }
        var response = HTTPResponse(error: error, close: true)
        response.headers.append(("Retry-After", "1"))
        _ = self.respond(response, head: nil)
        self.finish(false, context: context)
    }

    func subscriptionFinishedResponse(keepAlive: Bool) {
        guard let context = self.context else { return }
        let keepAlive = keepAlive && self.machine.keepAlive
        if case .holding(let subscription) = self.exchange, subscription.isParked {
            if keepAlive {
                self.parkedPoll = subscription
            } else {
                subscription.connectionClosed()
            }
        }
        self.exchange = .none
        self.finish(keepAlive, context: context)
    }

    /// The response to the current request is written (or queued in full): serve the next one, or close.
}
