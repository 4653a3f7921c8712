import NIOCore

/// What a message published through Pushpin's endpoint (`POST /publish/`, ``EPCPPublish``) carries for GRIP holds,
/// beyond the message object every other transport gets.
///
/// A message without it (published with `POST /pub/…`) reaches every hold: a response hold answers `200` with the
/// payload, a stream hold appends the payload. A message with it reaches a response hold only if it has ``response``
/// and a stream hold only if it has ``streamContent``, as in Pushpin.
public final class GripContent: Sendable {
    /// The item's `id`, which a hold's `prev-id` names.
    public let id: String?
    /// The `http-response` format: what completes a response hold.
    public let response: GripInstruction.Response?
    /// The `http-stream` content: what is appended to stream holds.
    public let streamContent: ByteBuffer?
    /// The `ws-message` content (UTF-8): the `data` of the message object the gateway's WebSocket subscribers get.
    public let webSocketContent: ByteBuffer?

    public init(id: String?, response: GripInstruction.Response?, streamContent: ByteBuffer?,
                webSocketContent: ByteBuffer? = nil) {
        self.id = id
        self.response = response
        self.streamContent = streamContent
        self.webSocketContent = webSocketContent
    }
}
