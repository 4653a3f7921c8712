import NIOCore

/// Renders the hidden-iframe "forever frame": an HTML document sent as HTTP chunks, one `<script>` per event.
///
/// The document starts with padding and a script that defines `c(obj)`, the one function every later script calls:
/// it calls the parent page's callback (same origin) or posts `obj` to the parent (`postMessage`, cross origin). So
/// a message's chunk does not depend on the subscriber and is rendered once per message and shared. Every object is
/// JSON whose strings escape `<`, `>`, `&`, U+2028 and U+2029 (``JSONEncoding``): no payload can close the script.
public enum IframeEncoding {
    /// What `c(obj)` does with each object.
    public enum Delivery: Sendable, Hashable {
        /// `parent.NAME(obj)`: the page is on the gateway's origin.
        case callback(JavaScriptCallback)
        /// `parent.postMessage(obj, ORIGIN)`: the page is on `ORIGIN`, an allowed origin.
        case postMessage(origin: String)
    }

    /// The callback a same-origin frame calls when the request names none.
    public static let defaultCallback = try! JavaScriptCallback(validating: "comet_message")

    /// Appends one HTTP chunk holding `content`.
    public static func writeChunk(_ content: ByteBuffer, into buffer: inout ByteBuffer) {
        Self.writeChunkSize(content.readableBytes, into: &buffer)
        buffer.writeImmutableBuffer(content)
        buffer.writeStaticString("\r\n")
    }

    /// Appends the size line of a chunk of `size` bytes.
    public static func writeChunkSize(_ size: Int, into buffer: inout ByteBuffer) {
        buffer.writeString(String(size, radix: 16))
        buffer.writeStaticString("\r\n")
    }

    /// The chunk that ends the chunked body.
    public static let lastChunk = ByteBuffer(string: "0\r\n\r\n")

    /// The start of the document: the HTML head, `padding` bytes of whitespace (older browsers run scripts only
    /// after 1 to 4 KB arrived) and the script that defines `c`. Not chunk-framed.
    public static func documentStart(delivery: Delivery, padding: Int) -> ByteBuffer {
        var html = ByteBuffer()
        html.writeStaticString("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>comet</title></head><body>\n")
        if padding > 0 {
            html.writeRepeatingByte(UInt8(ascii: " "), count: padding)
            html.writeStaticString("\n")
        }
        html.writeStaticString("<script>var c=function(m){")
        switch delivery {
        case .callback(let name):
            html.writeStaticString("parent.")
            html.writeString(name.name)
            html.writeStaticString("(m)")
        case .postMessage(let origin):
            html.writeStaticString("parent.postMessage(m,")
            JSONEncoding.writeString(origin, into: &html)  // a JSON string is a JavaScript string; < > & escaped
            html.writeStaticString(")")
        }
        html.writeStaticString("};</script>\n")
        return html
    }

    /// `<script>c(` + `json` + `)</script>\n`, not chunk-framed.
    public static func script(json: ByteBuffer) -> ByteBuffer {
        var script = ByteBuffer()
        script.reserveCapacity(json.readableBytes + 27)
        script.writeStaticString("<script>c(")
        script.writeImmutableBuffer(json)
        script.writeStaticString(")</script>\n")
        return script
    }

    /// The chunk of a script calling `c(json)`.
    public static func scriptChunk(json: String) -> ByteBuffer {
        var chunk = ByteBuffer()
        Self.writeChunk(Self.script(json: ByteBuffer(string: json)), into: &chunk)
        return chunk
    }

    /// The heartbeat chunk: `c({"heartbeat":true})`, which keeps proxies from timing the response out.
    public static let heartbeat = Self.scriptChunk(json: "{\"heartbeat\":true}")

    /// The end of the document and of the chunked body.
    public static let end: ByteBuffer = {
        var end = ByteBuffer()
        Self.writeChunk(ByteBuffer(string: "</body></html>\n"), into: &end)
        end.writeImmutableBuffer(Self.lastChunk)
        return end
    }()

    /// The shared chunk of a message for one-channel subscribers: `<script>c(<message object>)</script>`.
    static func messageChunk(object: ByteBuffer) -> ByteBuffer {
        let length = object.readableBytes + 21  // "<script>c(" 10 + ")</script>\n" 11
        let sizeText = String(length, radix: 16)
        var chunk = ByteBuffer()
        chunk.reserveCapacity(sizeText.utf8.count + 4 + length)
        chunk.writeString(sizeText)
        chunk.writeStaticString("\r\n<script>c(")
        chunk.writeImmutableBuffer(object)
        chunk.writeStaticString(")</script>\n\r\n")
        return chunk
    }
}
