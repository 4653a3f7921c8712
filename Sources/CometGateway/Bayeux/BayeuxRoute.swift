import CometCore
import Crypto
import NIOCore
import Synchronization

/// The Bayeux endpoint on the public listener (`bayeux.path`, `/cometd` by default, and every path below it, where
/// CometD clients append the message type): `POST` with a JSON body (`long-polling`), `GET ?jsonp=NAME&message=JSON`
/// (`callback-polling`), and WebSocket upgrades (`websocket`).
struct BayeuxRoute: Route {
    let gateway: GatewayContext

    func matches(_ head: RequestHead, target: RequestTarget) -> Bool {
        self.gateway.bayeux.serves(path: target.path)
    }

    func bodyPolicy(for head: RequestHead) -> HTTPConnectionStateMachine.BodyPolicy { self.gateway.bufferedBody }

    func handle(_ head: RequestHead, target: RequestTarget, body: ByteBuffer, eventLoop: any EventLoop) -> RouteAction {
        let policy = OriginPolicy(configuration: self.gateway.configuration)
        let origin = head.first(.origin)
        let cors = policy.corsHeaders(origin: origin)
        if head.isUpgrade, WebSocketHandshake.upgradesToWebSocket(head) {
            return self.upgrade(head, policy: policy, origin: origin)
        }
        let callback: JavaScriptCallback?
        let messages: [BayeuxMessage]
        do {
            callback = try target.queryValue("jsonp").map { try JavaScriptCallback(validating: $0) }
            switch head.method {
            case .post:
                messages = try self.parse(body)
            case .get:
                guard callback != nil else {
                    throw GatewayError(.methodNotAllowed, "use POST, or GET with ?jsonp=NAME&message=JSON")
                }
                guard let text = target.queryValue("message") else { throw GatewayError(.badRequest, "no message parameter") }
                messages = try self.parse(ByteBuffer(string: text))
            case .options:
                var headers = cors
                if !cors.isEmpty {
                    headers += [("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
                                ("Access-Control-Allow-Headers", "Content-Type, Authorization, X-Requested-With"),
                                ("Access-Control-Max-Age", "86400")]
                }
                headers.append(("Allow", "GET, POST, OPTIONS"))
                return .respond(HTTPResponse(status: 204, phrase: "No Content", headers: headers))
            default:
                throw GatewayError(.methodNotAllowed, "method not allowed (allowed: GET, POST, OPTIONS)")
            }
        } catch let error as GatewayError {
            var response = HTTPResponse(error: error)
            response.headers += cors
            if error.code == .methodNotAllowed { response.headers.append(("Allow", "GET, POST, OPTIONS")) }
            return .respond(response)
        } catch {
            return .respond(HTTPResponse(error: GatewayError(.badRequest, "bad request")))
        }
        // Only a subscribe reads a channel token.
        let claim = HoldClaim(format: Format(callback: callback, cors: cors))
        let token = messages.contains { $0.channel == "/meta/subscribe" }
            ? (target.queryValue("token") ?? head.first(name: "x-comet-token")) : nil
        BayeuxEndpoint(gateway: self.gateway).answer(
            messages, transport: callback == nil ? .longPolling : .callbackPolling, credentials: .init(head),
            token: token, on: eventLoop, reply: claim)
        return .hold(claim)
    }

    /// How an HTTP request's replies are answered: a JSON array, or a script calling the `jsonp` callback with it.
    struct Format: Sendable {
        let callback: JavaScriptCallback?
        let cors: [(String, String)]

        /// The cache headers of every answer.
        private static let noCache = [("Cache-Control", "no-cache, no-store")]

        func response(_ array: ByteBuffer) -> HTTPResponse {
            guard let callback = self.callback else {
                let headers = self.cors.isEmpty ? Self.noCache : self.cors + Self.noCache
                return .json(200, "OK", array, headers: headers)
            }
            var headers = self.cors + Self.noCache
            var script = ByteBuffer()
            script.reserveCapacity(callback.name.utf8.count + array.readableBytes + 3)
            script.writeString(callback.name)
            script.writeStaticString("(")
            script.writeImmutableBuffer(array)
            script.writeStaticString(");")
            headers.append(("X-Content-Type-Options", "nosniff"))
            return HTTPResponse(status: 200, phrase: "OK", headers: headers,
                                contentType: "text/javascript; charset=utf-8", body: script)
        }
    }

    private func parse(_ body: ByteBuffer) throws -> [BayeuxMessage] {
        do {
            return try BayeuxMessage.parse(body, maxMessages: self.gateway.bayeux.configuration.maxBatchMessages)
        } catch {
            throw GatewayError(.badRequest, error.message)
        }
    }

    /// A WebSocket upgrade: the same origin check as `/sub/`; the socket then carries Bayeux batches as text messages.
    private func upgrade(_ head: RequestHead, policy: OriginPolicy, origin: String?) -> RouteAction {
        do {
            guard head.method == .get else { throw GatewayError(.methodNotAllowed, "a WebSocket upgrade is a GET") }
            guard policy.allowsWebSocket(origin: origin, host: head.first(name: "host")) else {
                throw GatewayError(.forbidden, "origin is not allowed (transports.allowed_origins)")
            }
            let key = try WebSocketHandshake.key(of: head)
            let digest = Insecure.SHA1.hash(data: Array((key + WebSocketHandshake.guid).utf8))
            return .webSocket(.bayeux, accept: Base64.encode(Array(digest)))
        } catch let error as GatewayError {
            var response = HTTPResponse(error: error, close: true)
            if error.code == .upgradeRequired { response.headers.append(("Sec-WebSocket-Version", "13")) }
            return .respond(response)
        } catch {
            return .respond(HTTPResponse(error: GatewayError(.badRequest, "bad request"), close: true))
        }
    }
}
