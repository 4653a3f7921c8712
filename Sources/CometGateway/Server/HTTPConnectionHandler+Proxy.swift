import CometCore
import NIOCore

/// Requests passed through to the application (``ProxyExchange``) on a gateway connection.
extension HTTPConnectionHandler: ProxyExchangeOwner {
    /// Who the client is, for the forwarding headers: worked out once per connection (the peer's address as text
    /// costs a formatting call).
    func proxyClient(_ context: ChannelHandlerContext) -> ProxyHeaders.Client {
        if let client = self.forwardingClient { return client }
        let address = context.channel.remoteAddress?.ipAddress ?? ""
        let client = ProxyHeaders.Client(address: address, scheme: self.socketPath.scheme,
                                         trusted: self.gateway.configuration.proxy.trustedProxies.contains(address))
        self.forwardingClient = client
        return client
    }

    func proxy(_ head: RequestHead, to upstream: ProxyConfiguration.Upstream, context: ChannelHandlerContext) {
        let configuration = self.gateway.configuration.proxy
        let client = self.proxyClient(context)
        let exchange = ProxyExchange(head: head, upstream: upstream, configuration: configuration, client: client,
                                     keepAlive: self.machine.keepAlive,
                                     limits: (self.limits.maxChannelsPerSubscription, self.limits.maxChannelNameLength),
                                     pool: self.shard!.upstreams(maxIdle: configuration.maxIdleConnections),
                                     timers: self.shard!.timers, writer: self.writer!, loop: context.eventLoop, owner: self)
        self.exchange = .proxying(exchange)
        exchange.start()
    }

    func proxyFinished(keepAlive: Bool) {
        guard let context = self.context, case .proxying = self.exchange else { return }
        self.exchange = .none
        let keep = keepAlive && self.machine.keepAlive
        if !keep { self.writer?.closeWhenWritten() }  // the exchange wrote the response itself
        self.finish(keep, context: context)
    }

    func proxyFailed(_ error: GatewayError) {
        guard let context = self.context, case .proxying = self.exchange else { return }
        self.exchange = .none
        self.setClientReading(true)
        self.finish(self.respond(HTTPResponse(error: error), head: nil), context: context)
    }

    func proxyAborted() {
        guard let context = self.context else { return }
        self.close(context: context)
    }

    func proxyTunnelOpened() -> ByteBuffer? {
        self.shard?.timers.clear(self.timerID)
        return self.machine.upgrade()
    }

    func setClientReading(_ reading: Bool) {
        _ = self.context?.channel.setOption(.autoRead, value: reading)
    }
}
