import CometCore
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
            return self.routeSubscriber(head: head, target: target)
        case .publisher:
            return PublishEndpoint(gateway: self.gateway).route(head: head, target: target, body: body, eventLoop: eventLoop)
        }
    }

    private func routeSubscriber(head: RequestHead, target: RequestTarget) -> RouteResult {
        guard target.path.hasPrefix(SubscribeRequest.pathPrefix) else {
            return .respond(HTTPResponse(error: .init(.notFound, "not found")))
        }
        let cors = self.corsHeaders(origin: head.first(.origin))
        switch head.method {
        case .get:
            do {
                let request = try SubscribeRequest(
                    target: target,
                    accept: head.first(.accept),
                    lastEventID: head.first(.lastEventID),
                    limits: self.gateway.configuration.subscribeLimits
                )
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

    /// CORS headers for a request from `origin`, per `transports.cors_origins`.
    private func corsHeaders(origin: String?) -> [(String, String)] {
        guard let origin else { return [] }
        let allowed = self.gateway.configuration.transports.corsOrigins
        if allowed.contains("*") {
            return [("Access-Control-Allow-Origin", "*")]
        }
        if allowed.contains(origin) {
            return [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        }
        return []
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
