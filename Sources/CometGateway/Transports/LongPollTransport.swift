import CometCore
import NIOCore

/// XHR long polling, `?transport=poll` (the default): `{"messages":[…],"last_event_id":"…"}` as
/// `application/json`.
struct LongPollTransport: PollTransport {
    var kind: SubscriberKind { .poll }

    var contentType: String { HTTPResponse.jsonContentType }
    var headers: [(String, String)] { Self.noCache }
    var variant: String { "" }
    func writePrefix(into buffer: inout ByteBuffer) {}
    func writeSuffix(into buffer: inout ByteBuffer) {}
    var framingLength: Int { 0 }
    var closedStatus: (status: Int, phrase: String) { (410, "Gone") }

    private static let noCache = [("Cache-Control", "no-cache, no-store")]
}
