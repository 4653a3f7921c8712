import CometCore
import Crypto
import NIOCore
import Synchronization

/// What a request turns into.
enum RouteResult {
    /// Answer now.
    case respond(HTTPResponse)
    /// Answer when the future completes (publish endpoints).
    case respondLater(EventLoopFuture<HTTPResponse>)
    /// Answer a single-message publish with its receipt: `201` or `202` and the receipt as JSON, rendered with the
    /// head straight into the loop's response buffer (``PublishEndpoint/writeResponse(for:keepAlive:date:into:)``).
    case published(PublishReceipt)
    /// Hold the connection for a subscription.
    case subscribe(SubscribeRequest, corsHeaders: [(String, String)])
    /// Switch to WebSocket (the handshake was checked; `accept` is the `Sec-WebSocket-Accept` value) and subscribe.
    case webSocket(SubscribeRequest, accept: String)
}

/// Which listener a connection came in on.
package enum ListenerRole: Sendable {
    /// The public listener: subscriptions.
    case subscriber
    /// The publisher listener: webhooks.
    case publisher
}

/// Routes complete requests of both listeners.
struct Router {
    let gateway: GatewayContext

    func route(head: RequestHead, body: ByteBuffer, role: ListenerRole, eventLoop: any EventLoop) -> RouteResult {
        let target: RequestTarget
        do {
            target = try RequestTarget(parsing: head.uri)
        } catch let error as GatewayError {
            return .respond(HTTPResponse(error: error))
        } catch {
            return .respond(HTTPResponse(error: .init(.badRequest, "bad request target")))
        }
        if target.path == "/healthz" {
            guard head.method == .get || head.method == .head else { return .respond(Self.methodNotAllowed("GET")) }
            return .respond(self.health())
        }
        switch role {
        case .subscriber:
            return self.routeSubscriber(head: head, target: target, body: body, eventLoop: eventLoop)
        case .publisher:
            return PublishEndpoint(gateway: self.gateway).route(head: head, target: target, body: body, eventLoop: eventLoop)
        }
    }

    private func routeSubscriber(head: RequestHead, target: RequestTarget, body: ByteBuffer,
                                 eventLoop: any EventLoop) -> RouteResult {
        guard target.path.hasPrefix(SubscribeRequest.pathPrefix) else {
            return ClientPages(gateway: self.gateway).route(head: head, target: target, body: body, eventLoop: eventLoop)
        }
        let policy = OriginPolicy(configuration: self.gateway.configuration)
        let origin = head.first(.origin)
        let cors = policy.corsHeaders(origin: origin)
        // Only a WebSocket upgrade is taken; any other (h2c, say) is ignored and the request served as HTTP/1.1.
        if head.isUpgrade, WebSocketHandshake.upgradesToWebSocket(head) {
            return self.routeWebSocket(head: head, target: target, policy: policy, origin: origin)
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
                return .subscribe(request, corsHeaders: cors)
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
            return .respond(Self.methodNotAllowed("GET, OPTIONS"))
        }
    }

    /// `GET /sub/{channels}` with `Upgrade: websocket`: the origin check, the handshake and the subscription's
    /// channels and cursor. A refusal closes the connection.
    private func routeWebSocket(head: RequestHead, target: RequestTarget, policy: OriginPolicy,
                                origin: String?) -> RouteResult {
        do {
            guard policy.allowsWebSocket(origin: origin, host: head.first(name: "host")) else {
                throw GatewayError(.forbidden, "origin is not allowed (transports.allowed_origins)")
            }
            let key = try WebSocketHandshake.key(of: head)
            let request = try SubscribeRequest(target: target, accept: nil, lastEventID: head.first(.lastEventID),
                                               limits: self.gateway.configuration.subscribeLimits, webSocket: true)
            let digest = Insecure.SHA1.hash(data: Array((key + WebSocketHandshake.guid).utf8))
            return .webSocket(request, accept: Base64.encode(Array(digest)))
        } catch let error as GatewayError {
            var response = HTTPResponse(error: error, close: true)
            if error.code == .upgradeRequired { response.headers.append(("Sec-WebSocket-Version", "13")) }
            return .respond(response)
        } catch {
            return .respond(HTTPResponse(error: .init(.badRequest, "bad request"), close: true))
        }
    }

    private func health() -> HTTPResponse {
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
            "accept_backoffs":\(stats.acceptBackoffs.load(ordering: .relaxed))}
            """
        return draining
            ? .json(503, "Service Unavailable", ByteBuffer(string: body))
            : .json(200, "OK", ByteBuffer(string: body))
    }

    static func methodNotAllowed(_ allow: String) -> HTTPResponse {
        var response = HTTPResponse(error: GatewayError(.methodNotAllowed, "method not allowed (allowed: \(allow))"))
        response.headers.append(("Allow", allow))
        return response
    }
}
