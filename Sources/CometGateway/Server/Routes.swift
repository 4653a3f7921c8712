import CometCore
import Crypto
import NIOCore
import Synchronization

/// What a route does with its request.
enum RouteAction {
    /// Answer now.
    case respond(HTTPResponse)
    /// Answer when the future completes (publish endpoints).
    case respondLater(EventLoopFuture<HTTPResponse>)
    /// Answer a single-message publish with its receipt: `201` or `202` and the receipt as JSON, rendered with the
    /// head straight into the loop's response buffer (``PublishEndpoint/writeResponse(for:keepAlive:date:into:)``).
    case published(PublishReceipt)
    /// Hold the connection for a subscription.
    case subscribe(SubscribeRequest, corsHeaders: [(String, String)])
    /// Switch to WebSocket (the handshake was checked; `accept` is the `Sec-WebSocket-Accept` value) and serve
    /// `endpoint`'s protocol on it.
    case webSocket(WebSocketEndpoint, accept: String)
    /// Pass the request through to this upstream (its body streams up as it arrives).
    case proxy(ProxyConfiguration.Upstream)
    /// Wait for the ``HeldAnswer`` to hand this connection its answer (a Bayeux request: a held connect, or a batch
    /// waiting for the application), unless the connection closes first: then it is abandoned (a Bayeux connect
    /// held for its client gives back the client's queued messages). No future: the answer calls the connection.
    case hold(any HeldAnswer)
    /// Decide when the future completes (a subscription waiting for the application's authorization).
    case deferred(EventLoopFuture<RouteAction>)
}

/// A request's answer that something other than its connection makes, now or later, on any loop (a Bayeux
/// session): the connection waits on it, and it hands the connection the answer's body on the connection's loop.
protocol HeldAnswer: AnyObject, Sendable {
    /// The connection waits for the answer: `receiver` gets it on `loop` (at once, before this returns, when it came
    /// already). Called once, on `loop`.
    func wait(_ receiver: any HeldAnswerReceiver, on loop: any EventLoop)
    /// The response carrying `body`.
    func render(_ body: ByteBuffer) -> HTTPResponse
    /// The connection closed before the answer came: it is not handed over.
    func abandon()
}

/// What waits for a ``HeldAnswer``: a connection. Confined to its event loop.
protocol HeldAnswerReceiver: AnyObject {
    /// The answer's body came (at most once per ``HeldAnswer/wait(_:on:)``).
    func answered(_ body: ByteBuffer, by answer: any HeldAnswer)
}

/// What a WebSocket carries after its handshake.
enum WebSocketEndpoint: Sendable {
    /// `/sub/`: channel subscriptions and control messages (``WebSocketCommand``), starting with the URL's channels.
    case channels(SubscribeRequest)
    /// The Bayeux endpoint: batches of Bayeux messages.
    case bayeux
}

/// One of a listener's routes, chosen from a request's head before its body is read: it says how that body is read
/// (and how large it may be), then answers the request.
protocol Route: Sendable {
    /// Whether this route serves the request (the first route of a ``RouteTable`` that does, serves it).
    func matches(_ head: RequestHead, target: RequestTarget) -> Bool
    /// How the request's body is read.
    func bodyPolicy(for head: RequestHead) -> HTTPConnectionStateMachine.BodyPolicy
    /// Answers the request, once its body was read.
    func handle(_ head: RequestHead, target: RequestTarget, body: ByteBuffer, eventLoop: any EventLoop) -> RouteAction
}

/// Which listener a connection came in on.
package enum ListenerRole: Sendable {
    /// The public listener: subscriptions.
    case subscriber
    /// The publisher listener: webhooks.
    case publisher
}

/// A listener's routes, in order: the first that matches a request serves it; the last matches everything.
struct RouteTable: Sendable {
    /// A request's route, or the answer to a head that no route can take.
    enum Choice {
        case route(any Route, RequestTarget)
        /// Answer this and close (the body, if any, is not read).
        case refuse(HTTPResponse)
    }

    let routes: [any Route]

    /// The public listener's: health, subscriptions (and WebSocket), the Bayeux endpoint, the application behind the
    /// gateway (when `[[proxy.route]]` tables are configured), then the client library and demo pages.
    static func subscriber(_ gateway: GatewayContext) -> RouteTable {
        var routes: [any Route] = [HealthRoute(gateway: gateway), SubscribeRoute(gateway: gateway)]
        if gateway.configuration.bayeux.enabled { routes.append(BayeuxRoute(gateway: gateway)) }
        if !gateway.configuration.proxy.routes.isEmpty { routes.append(ProxyRoute(gateway: gateway)) }
        routes.append(CatchAllRoute.clientPages(gateway))
        return RouteTable(routes: routes)
    }

    /// The publisher listener's: health, then the publish endpoints.
    static func publisher(_ gateway: GatewayContext) -> RouteTable {
        RouteTable(routes: [HealthRoute(gateway: gateway), MetricsRoute(gateway: gateway), CatchAllRoute.publish(gateway)])
    }

    /// The listener's routes.
    static func forRole(_ role: ListenerRole, gateway: GatewayContext) -> RouteTable {
        switch role {
        case .subscriber: return .subscriber(gateway)
        case .publisher: return .publisher(gateway)
        }
    }

    func choose(_ head: RequestHead) -> Choice {
        let target: RequestTarget
        do {
            target = try RequestTarget(parsing: head.uri)
        } catch let error as GatewayError {
            return .refuse(HTTPResponse(error: error, close: true))
        } catch {
            return .refuse(HTTPResponse(error: .init(.badRequest, "bad request target"), close: true))
        }
        for route in self.routes where route.matches(head, target: target) {
            return .route(route, target)
        }
        return .refuse(HTTPResponse(error: .init(.notFound, "not found"), close: true))
    }
}

/// The body limit of every route that buffers one: `limits.max_publish_body_bytes`.
extension GatewayContext {
    var bufferedBody: HTTPConnectionStateMachine.BodyPolicy {
        .buffer(limit: self.configuration.limits.maxPublishBodyBytes)
    }
}

/// A route of one fixed path that answers `GET` (and `HEAD`) with a response made now: `/healthz`, `/metrics`.
protocol StatusRoute: Route {
    var gateway: GatewayContext { get }
    /// The path.
    static var path: String { get }
    /// The answer.
    func response() -> HTTPResponse
}

extension StatusRoute {
    func matches(_ head: RequestHead, target: RequestTarget) -> Bool { target.path == Self.path }

    func bodyPolicy(for head: RequestHead) -> HTTPConnectionStateMachine.BodyPolicy { self.gateway.bufferedBody }

    func handle(_ head: RequestHead, target: RequestTarget, body: ByteBuffer, eventLoop: any EventLoop) -> RouteAction {
        guard head.method == .get || head.method == .head else { return .respond(Routes.methodNotAllowed("GET")) }
        return .respond(self.response())
    }
}

/// `GET /healthz` on both listeners.
struct HealthRoute: StatusRoute {
    let gateway: GatewayContext
    static let path = "/healthz"

    func response() -> HTTPResponse {
        let stats = self.gateway.stats
        let draining = self.gateway.draining.load(ordering: .relaxed)
        let body = """
            {"status":"\(draining ? "draining" : "ok")",\
            "connections":\(stats.publicConnections.load(ordering: .relaxed)),\
            "publisher_connections":\(stats.publisherConnections.load(ordering: .relaxed)),\
            "subscribers":\(stats.subscribers.load(ordering: .relaxed)),\
            "channels_with_subscribers":\(self.gateway.hub.channelCount),\
            "messages_published":\(stats.messagesPublished.load(ordering: .relaxed)),\
            "slow_consumer_closes":\(stats.slowConsumerCloses.load(ordering: .relaxed)),\
            "queued_writes":\(stats.queuedWrites.load(ordering: .relaxed)),\
            "connections_refused":\(stats.connectionsRefused.load(ordering: .relaxed)),\
            "accept_backoffs":\(stats.acceptBackoffs.load(ordering: .relaxed)),\
            "broker":"\(self.gateway.configuration.broker.type)",\
            "broker_connected":\(self.gateway.broker.isConnected)}
            """
        return draining
            ? .json(503, "Service Unavailable", ByteBuffer(string: body))
            : .json(200, "OK", ByteBuffer(string: body))
    }
}

/// `GET /metrics` on the publisher listener: the Prometheus text format (``GatewayMetrics``).
struct MetricsRoute: StatusRoute {
    let gateway: GatewayContext
    static let path = "/metrics"

    func response() -> HTTPResponse {
        let text = self.gateway.metrics.render(stats: self.gateway.stats, hub: self.gateway.hub,
                                               broker: self.gateway.broker,
                                               draining: self.gateway.draining.load(ordering: .relaxed))
        return HTTPResponse(status: 200, phrase: "OK", contentType: "text/plain; version=0.0.4; charset=utf-8", body: text)
    }
}

/// `GET /sub/{channels}` on the public listener: every subscriber transport, WebSocket upgrades included.
struct SubscribeRoute: Route {
    let gateway: GatewayContext

    /// With `auth.authorize_url`, `admitted` once the application said yes (``Authorizer``), else its refusal;
    /// without, `admitted` now.
    private func askingTheApplication(_ request: SubscribeRequest, head: RequestHead, eventLoop: any EventLoop,
                                      cors: [(String, String)], close: Bool = false,
                                      admitted: @escaping @Sendable () -> RouteAction) -> RouteAction {
        guard let authorizer = self.gateway.hub.shard(for: eventLoop).authorizer(self.gateway.configuration) else {
            return admitted()
        }
        let verdict = authorizer.authorize(request.channels, credentials: .init(head))
        return .deferred(verdict.map { verdict in
            switch verdict {
            case .admit:
                return admitted()
            case .refuse(let error):
                var response = HTTPResponse(error: error, close: close)
                response.headers += cors
                return .respond(response)
            }
        })
    }

    /// With `auth.channel_token_key`, a subscription needs a valid token for its channels (``ChannelTokens``):
    /// `?token=` or the `X-Comet-Token` header. Otherwise `403` with the reason.
    private func authorize(_ request: SubscribeRequest, head: RequestHead, target: RequestTarget) throws {
        guard let tokens = self.gateway.channelTokens else { return }
        let token = target.queryValue("token") ?? head.first(name: "x-comet-token")
        if let refusal = tokens.refusal(token, channels: request.channels) {
            throw GatewayError(.forbidden, refusal)
        }
    }

    func matches(_ head: RequestHead, target: RequestTarget) -> Bool {
        target.path.hasPrefix(SubscribeRequest.pathPrefix)
    }

    func bodyPolicy(for head: RequestHead) -> HTTPConnectionStateMachine.BodyPolicy { self.gateway.bufferedBody }

    func handle(_ head: RequestHead, target: RequestTarget, body: ByteBuffer, eventLoop: any EventLoop) -> RouteAction {
        let policy = OriginPolicy(configuration: self.gateway.configuration)
        let origin = head.first(.origin)
        let cors = policy.corsHeaders(origin: origin)
        // Only a WebSocket upgrade is taken; any other (h2c, say) is ignored and the request served as HTTP/1.1.
        if head.isUpgrade, WebSocketHandshake.upgradesToWebSocket(head) {
            return self.routeWebSocket(head: head, target: target, policy: policy, eventLoop: eventLoop, origin: origin)
        }
        switch head.method {
        case .get:
            do {
                let request = try SubscribeRequest(
                    target: target,
                    accept: head.first(.accept),
                    lastEventID: head.first(.lastEventID),
                    limits: self.gateway.configuration.subscribeLimits
                )
                if request.transport == .iframe, let target = request.origin, !policy.allowsPostMessage(to: target) {
                    throw GatewayError(.forbidden, "origin is not allowed (transports.allowed_origins)")
                }
                try self.authorize(request, head: head, target: target)
                return self.askingTheApplication(request, head: head, eventLoop: eventLoop, cors: cors) {
                    .subscribe(request, corsHeaders: cors)
                }
            } catch let error as GatewayError {
                var response = HTTPResponse(error: error)
                response.headers += cors
                return .respond(response)
            } catch {
                return .respond(HTTPResponse(error: .init(.badRequest, "bad request")))
            }
        case .options:
            var headers = cors
            if !cors.isEmpty {
                headers += [
                    ("Access-Control-Allow-Methods", "GET, OPTIONS"),
                    ("Access-Control-Allow-Headers", "Last-Event-ID, Accept, Cache-Control, X-Requested-With"),
                    ("Access-Control-Max-Age", "86400"),
                ]
            }
            headers.append(("Allow", "GET, OPTIONS"))
            return .respond(HTTPResponse(status: 204, phrase: "No Content", headers: headers))
        default:
            return .respond(Routes.methodNotAllowed("GET, OPTIONS"))
        }
    }

    /// `GET /sub/{channels}` with `Upgrade: websocket`: the origin check, the handshake and the subscription's
    /// channels and cursor. A refusal closes the connection.
    private func routeWebSocket(head: RequestHead, target: RequestTarget, policy: OriginPolicy, eventLoop: any EventLoop,
                                origin: String?) -> RouteAction {
        do {
            guard policy.allowsWebSocket(origin: origin, host: head.first(name: "host")) else {
                throw GatewayError(.forbidden, "origin is not allowed (transports.allowed_origins)")
            }
            let key = try WebSocketHandshake.key(of: head)
            let request = try SubscribeRequest(target: target, accept: nil, lastEventID: head.first(.lastEventID),
                                               limits: self.gateway.configuration.subscribeLimits, webSocket: true)
            try self.authorize(request, head: head, target: target)
            let digest = Insecure.SHA1.hash(data: Array((key + WebSocketHandshake.guid).utf8))
            let accept = Base64.encode(Array(digest))
            return self.askingTheApplication(request, head: head, eventLoop: eventLoop, cors: [], close: true) {
                .webSocket(.channels(request), accept: accept)
            }
        } catch let error as GatewayError {
            var response = HTTPResponse(error: error, close: true)
            if error.code == .upgradeRequired { response.headers.append(("Sec-WebSocket-Version", "13")) }
            return .respond(response)
        } catch {
            return .respond(HTTPResponse(error: .init(.badRequest, "bad request"), close: true))
        }
    }
}

/// Requests for the application behind the gateway (`[[proxy.route]]`), except the gateway's own client library.
struct ProxyRoute: Route {
    let gateway: GatewayContext

    func matches(_ head: RequestHead, target: RequestTarget) -> Bool {
        target.path != ClientPages.libraryPath
            && self.gateway.configuration.proxy.route(host: head.first(name: "host"), path: target.path) != nil
    }

    func bodyPolicy(for head: RequestHead) -> HTTPConnectionStateMachine.BodyPolicy { .stream }

    func handle(_ head: RequestHead, target: RequestTarget, body: ByteBuffer, eventLoop: any EventLoop) -> RouteAction {
        guard let route = self.gateway.configuration.proxy.route(host: head.first(name: "host"), path: target.path) else {
            return .respond(HTTPResponse(error: .init(.notFound, "not found")))
        }
        return .proxy(route.upstream)
    }
}

/// A listener's last route: every request that reaches it goes to `serve` (the public listener's ``ClientPages``,
/// the publisher listener's ``PublishEndpoint``), which answers `404` for a path it does not serve.
struct CatchAllRoute: Route {
    let gateway: GatewayContext
    let serve: @Sendable (GatewayContext, RequestHead, RequestTarget, ByteBuffer, any EventLoop) -> RouteAction

    /// The client library, the demo page and its publish form.
    static func clientPages(_ gateway: GatewayContext) -> CatchAllRoute {
        CatchAllRoute(gateway: gateway) { gateway, head, target, body, eventLoop in
            ClientPages(gateway: gateway).route(head: head, target: target, body: body, eventLoop: eventLoop)
        }
    }

    /// The publish webhooks.
    static func publish(_ gateway: GatewayContext) -> CatchAllRoute {
        CatchAllRoute(gateway: gateway) { gateway, head, target, body, eventLoop in
            PublishEndpoint(gateway: gateway).route(head: head, target: target, body: body, eventLoop: eventLoop)
        }
    }

    func matches(_ head: RequestHead, target: RequestTarget) -> Bool { true }

    func bodyPolicy(for head: RequestHead) -> HTTPConnectionStateMachine.BodyPolicy { self.gateway.bufferedBody }

    func handle(_ head: RequestHead, target: RequestTarget, body: ByteBuffer, eventLoop: any EventLoop) -> RouteAction {
        self.serve(self.gateway, head, target, body, eventLoop)
    }
}

/// Answers shared by routes.
enum Routes {
    static func methodNotAllowed(_ allow: String) -> HTTPResponse {
        var response = HTTPResponse(error: GatewayError(.methodNotAllowed, "method not allowed (allowed: \(allow))"))
        response.headers.append(("Allow", allow))
        return response
    }
}
