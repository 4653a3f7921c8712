import CometCore
import NIOCore
import Testing

// Small helpers shared by the CometCore unit tests. Nothing here calls into the code under test to compute an
// expected value: expectations are written by hand or derived from the standard library / Foundation.

/// The readable bytes of a buffer.
func bytes(_ buffer: ByteBuffer) -> [UInt8] {
    Array(buffer.readableBytesView)
}

/// The readable bytes of a buffer as text (lossless for the valid UTF-8 the tests use).
func text(_ buffer: ByteBuffer) -> String {
    String(decoding: buffer.readableBytesView, as: UTF8.self)
}

/// A channel name the test knows is valid.
func channel(_ name: String) throws -> ChannelName {
    try ChannelName(validating: name)
}

/// A message with a payload of `payload`, published at `publishedAt` (microseconds).
func makeMessage(
    id: UInt64,
    channel name: String = "news",
    payload: String = "x",
    event: String? = nil,
    contentType: String? = nil,
    publishedAt: UInt64 = 0
) throws -> Message {
    Message(
        channel: try channel(name),
        id: id,
        event: event,
        contentType: contentType,
        data: ByteBuffer(string: payload),
        publishedAt: publishedAt
    )
}

/// A message whose payload is exactly `byteCount` bytes.
func makeMessage(id: UInt64, byteCount: Int, publishedAt: UInt64 = 0) throws -> Message {
    try makeMessage(id: id, payload: String(repeating: "b", count: byteCount), publishedAt: publishedAt)
}

/// Runs `body`, expects it to throw a ``GatewayError`` and returns it.
@discardableResult
func expectGatewayError(
    _ code: GatewayError.Code,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void
) -> GatewayError? {
    do {
        try body()
        Issue.record("expected a GatewayError \(code), nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as GatewayError {
        #expect(error.code == code, "wrong error code for: \(error)", sourceLocation: sourceLocation)
        #expect(error.code.status == code.status, sourceLocation: sourceLocation)
        #expect(!error.reason.isEmpty, "an error needs a reason", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected a GatewayError \(code), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Normalises line endings the way an SSE client does: CRLF and lone CR become LF. Works on bytes, so a CRLF
/// (a single `Character` in Swift) cannot be mistaken for anything else.
func normalisingLineEndings(_ text: String) -> String {
    var output: [UInt8] = []
    let input = Array(text.utf8)
    var index = 0
    while index < input.count {
        let byte = input[index]
        if byte == UInt8(ascii: "\r") {
            output.append(UInt8(ascii: "\n"))
            if index + 1 < input.count, input[index + 1] == UInt8(ascii: "\n") { index += 1 }
        } else {
            output.append(byte)
        }
        index += 1
    }
    return String(decoding: output, as: UTF8.self)
}

/// The number of lines in `text` when CR, LF and CRLF all end a line (a text with no line ending has one line;
/// a trailing line ending starts one more, empty, line).
func lineCount(_ text: String) -> Int {
    normalisingLineEndings(text).utf8.filter { $0 == UInt8(ascii: "\n") }.count + 1
}
