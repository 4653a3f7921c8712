import CometCore
import NIOCore

/// JSONP long polling, `?transport=jsonp&callback=NAME` (or just `?callback=NAME`): the long-poll body as the
/// argument of a call, `/**/NAME({…});`, served as `application/javascript` for a `<script>` tag on any page.
///
/// The name passed ``JavaScriptCallback``'s strict grammar. The leading comment keeps the response from starting
/// with bytes a content sniffer could take for something else; `nosniff` makes browsers run it only as a script.
/// A poll of a deleted channel is answered `200` (a script tag cannot read another status) with the
/// `{"closed":true,…}` object.
struct JSONPTransport: PollTransport {
    let callback: JavaScriptCallback

    var kind: SubscriberKind { .jsonp }

    var contentType: String { "application/javascript; charset=utf-8" }
    var headers: [(String, String)] { Self.headers }
    var variant: String { self.callback.name }

    func writePrefix(into buffer: inout ByteBuffer) {
        buffer.writeStaticString("/**/")
        buffer.writeString(self.callback.name)
        buffer.writeStaticString("(")
    }

    func writeSuffix(into buffer: inout ByteBuffer) {
        buffer.writeStaticString(");")
    }

    var framingLength: Int { self.callback.name.utf8.count + 7 }
    var closedStatus: (status: Int, phrase: String) { (200, "OK") }

    private static let headers = [("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff")]
}
