import CometCore
import CometRedis
import NIOCore

/// A message as the Redis broker stores it (a stream entry's `m` field) and sends it between nodes: a RESP array
/// `[data, event, content type, grip]`, where absent parts are nil and `grip` is `[id, http-stream content,
/// ws-message content, http-response]` with the response as `[status, reason, [name, value, …], body]`.
enum RedisMessageCodec {
    static func encode(_ draft: MessageDraft) -> ByteBuffer {
        func bulk(_ text: String?) -> RESPValue { .bulkString(text.map { ByteBuffer(string: $0) }) }
        var grip = RESPValue.bulkString(nil)
        if let content = draft.grip {
            var response = RESPValue.bulkString(nil)
            if let r = content.response {
                response = .array([.integer(Int64(r.status)), bulk(r.reason),
                                   .array(r.headers.flatMap { [bulk($0.name), bulk($0.value)] }),
                                   .bulkString(ByteBuffer(bytes: r.body))])
            }
            grip = .array([bulk(content.id), .bulkString(content.streamContent), .bulkString(content.webSocketContent),
                           response])
        }
        var buffer = ByteBuffer()
        RESPEncoder.write(.array([.bulkString(draft.data), bulk(draft.event), bulk(draft.contentType), grip]),
                          into: &buffer)
        return buffer
    }

    /// The message `id` of `channel` from its encoding; nil when the bytes are not one (a foreign writer's key).
    static func decode(_ bytes: ByteBuffer, channel: ChannelName, id: UInt64) -> Message? {
        var buffer = bytes
        guard let value = try? RESPParser().next(&buffer), let parts = value.elements, parts.count == 4,
              case .bulkString(let data?) = parts[0], data.readableBytesView.isValidUTF8
        else { return nil }
        var grip: GripContent?
        if let fields = parts[3].elements, fields.count == 4 {
            var response: GripInstruction.Response?
            if let r = fields[3].elements, r.count == 4, let status = r[0].int, let pairs = r[2].elements {
                var headers: [(name: String, value: String)] = []
                var index = 0
                while index + 1 < pairs.count {
                    headers.append((pairs[index].string ?? "", pairs[index + 1].string ?? ""))
                    index += 2
                }
                response = GripInstruction.Response(status: Int(status), reason: r[1].string ?? "OK", headers: headers,
                                                    body: Array((r[3].bytes ?? ByteBuffer()).readableBytesView))
            }
            grip = GripContent(id: fields[0].string, response: response, streamContent: fields[1].bytes,
                               webSocketContent: fields[2].bytes)
        }
        return Message(channel: channel, id: id, event: parts[1].string, contentType: parts[2].string, data: data,
                       publishedAt: id, grip: grip)
    }
}

extension Collection<UInt8> {
    /// Whether the bytes are valid UTF-8.
    var isValidUTF8: Bool { String(validating: self, as: UTF8.self) != nil }
}
