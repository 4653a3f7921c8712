import CometCore
import NIOCore
import Synchronization

/// Whether a connection takes a request, decided from its head alone (the parser already enforced the target and
/// header limits; the route's body limit is the connection state machine's): the connection limit and `Expect`.
struct RequestAdmission {
    /// The connection was over `server.max_connections` when it opened.
    let overLimit: Bool
    let stats: GatewayStats

    enum Decision {
        /// Serve it.
        case admit
        /// Serve it, after `100 Continue` (the client waits for it before sending its body).
        case continueFirst
        /// Answer with this response and close.
        case refuse(HTTPResponse)
    }

    static let continueResponse = ByteBuffer(string: "HTTP/1.1 100 Continue\r\n\r\n")

    func admit(_ head: RequestHead) -> Decision {
        if self.overLimit {
            self.stats.connectionsRefused.add(1, ordering: .relaxed)
            var response = HTTPResponse(error: GatewayError(.serviceUnavailable, "too many connections"), close: true)
            response.headers.append(("Retry-After", "5"))
            return .refuse(response)
        }
        guard let expectation = head.expectation else { return .admit }
        guard expectation.lowercased() == "100-continue" else {
            let error = GatewayError(.init(417, "Expectation Failed"), "only Expect: 100-continue is supported")
            return .refuse(HTTPResponse(error: error, close: true))
        }
        // Clients such as curl wait for this before sending a body (they would stall for a second otherwise).
        return head.hasBody ? .continueFirst : .admit
    }
}
