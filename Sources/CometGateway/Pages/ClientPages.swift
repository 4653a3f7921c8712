import CometCore
import NIOCore

/// The public listener's pages: the client library (`GET /comet.js`), the demo page (`GET /`) and, while
/// `server.demo` is on, the demo page's publish form (`POST /demo/publish/{channel}`).
struct ClientPages {
    let gateway: GatewayContext

    /// The path of the client library.
    static let libraryPath = "/comet.js"

    /// The path of the demo page's publish form.
    static let demoPublishPrefix = "/demo/publish/"

    func route(head: RequestHead, target: RequestTarget, body: ByteBuffer, eventLoop: any EventLoop) -> RouteAction {
        switch target.path {
        case Self.libraryPath:
            return .respond(self.serve(ClientLibrary.script, head: head))
        case "/", "/index.html":
            return .respond(self.serve(ClientLibrary.demoPage, head: head))
        default:
            guard self.gateway.configuration.server.demo, target.path.hasPrefix(Self.demoPublishPrefix) else {
                return .respond(HTTPResponse(error: .init(.notFound, "not found")))
            }
            guard head.method == .post else { return .respond(Routes.methodNotAllowed("POST")) }
            do {
                let channel = Substring(target.path.utf8.dropFirst(Self.demoPublishPrefix.utf8.count))
                return try PublishEndpoint(gateway: self.gateway)
                    .publishSingle(channelText: channel, head: head, target: target, body: body, eventLoop: eventLoop)
            } catch let error as GatewayError {
                return .respond(HTTPResponse(error: error))
            } catch {
                return .respond(HTTPResponse(error: .init(.badRequest, "bad request")))
            }
        }
    }

    /// A static file: `200` with its `ETag` and `Cache-Control`, or `304` when the client's `If-None-Match` has it.
    private func serve(_ file: ClientLibrary.File, head: RequestHead) -> HTTPResponse {
        guard head.method == .get || head.method == .head else { return Routes.methodNotAllowed("GET, HEAD") }
        let headers = [("ETag", file.etag), ("Cache-Control", file.cacheControl), ("X-Content-Type-Options", "nosniff")]
        if let tags = head.first(name: "if-none-match"),
           tags == "*" || tags.split(separator: ",").contains(where: { $0.trimmingSpaces == file.etag }) {
            return HTTPResponse(status: 304, phrase: "Not Modified", headers: headers)
        }
        return HTTPResponse(status: 200, phrase: "OK", headers: headers, contentType: file.contentType, body: file.body)
    }
}
