import FoundationEssentials
import NIOCore

/// `POST /publish/` as Pushpin serves it (EPCP, the Extensible Pubsub Control Protocol): a body
/// `{"items": [{"channel", "id"?, "prev-id"?, "formats": {"http-response"?, "http-stream"?, "ws-message"?}}]}`, with
/// Pushpin's error texts, so that backends written for Pushpin (and its `pubcontrol` / `gripcontrol` libraries)
/// publish to the gateway unchanged.
///
/// Each item becomes one message on its channel, unless it only closes streams. Its `data` (what the gateway's own
/// subscribers get) is the item's `http-stream` content, or else its `ws-message` content, or else its `http-response`
/// body (`content-bin` / `body-bin`: base64), which must be UTF-8, except for WebSocket subscribers, whose `data` is
/// the `ws-message` content when there is one; its `content_type` is the `http-response` format's
/// `Content-Type` header when there is one. GRIP holds get the formats themselves (``GripContent``): the
/// `http-response` (`code`, default 200; `reason`; `headers` as an object or `[name, value]` pairs; `body` or
/// `body-bin`) completes response holds, the `http-stream` content is appended to stream holds, and
/// `http-stream` `action: "close"` ends the channel's stream holds (after the item's message, if it has other
/// formats). The item's `id` is kept for holds' `prev-id`; `prev-id` is checked for type, then not used: the gateway
/// orders a channel's messages as they arrive. Actions `hint` and `refresh` are refused (no equivalent).
public enum EPCPPublish {
    /// The path of the endpoint (also served with a trailing slash).
    public static let path = "/publish"

    /// A refusal: the status line's text is always `Bad Request`; `message` is Pushpin's body (without its newline).
    public struct Refusal: Error, Sendable, Equatable {
        public var message: String
    }

    /// One item of a publish.
    public struct Item: Sendable {
        /// The message to publish; nil when the item only closes streams.
        public var draft: MessageDraft?
        /// The channel.
        public var channel: ChannelName
        /// The item ends the channel's GRIP stream holds (`http-stream` `action: "close"`).
        public var closesStreams: Bool
    }

    /// Parses a publish body into items, validating everything before anything is published.
    public static func parse(body: ByteBuffer, maxItems: Int, maxChannelNameLength: Int) throws(Refusal) -> [Item] {
        let document: JSONValue
        do {
            document = try body.withUnsafeReadableBytes { try JSONDecoder().decode(JSONValue.self, from: Data($0)) }
        } catch {
            throw Refusal(message: "Body is not valid JSON.")
        }
        guard case .object(let root) = document else { throw Refusal(message: "Invalid format.") }
        guard let itemsValue = root["items"] else {
            throw Refusal(message: "Invalid format: object does not contain 'items'")
        }
        guard case .array(let list) = itemsValue else {
            throw Refusal(message: "Invalid format: object contains 'items' with wrong type")
        }
        guard list.count <= maxItems else {
            throw Refusal(message: "Invalid format: more than \(maxItems) items (limits.max_batch_messages)")
        }
        var items: [Item] = []
        items.reserveCapacity(list.count)
        for item in list {
            do {
                items.append(try Self.item(item, maxChannelNameLength: maxChannelNameLength))
            } catch {
                throw Refusal(message: "Invalid format: \(error.message)")
            }
        }
        return items
    }

    private static let item = "publish item object"

    private static func item(_ value: JSONValue, maxChannelNameLength: Int) throws(Refusal) -> Item {
        guard case .object(let fields) = value else { throw Refusal(message: "\(Self.item) is not an object") }
        guard let channelValue = fields["channel"] else {
            throw Refusal(message: "\(Self.item) does not contain 'channel'")
        }
        guard case .string(let channelText) = channelValue else {
            throw Refusal(message: "\(Self.item) contains 'channel' with wrong type")
        }
        for key in ["id", "prev-id"] {
            if let id = fields[key], case .string = id {} else if fields[key] != nil {
                throw Refusal(message: "\(Self.item) contains '\(key)' with wrong type")
            }
        }
        var formats: [String: JSONValue] = [:]
        if let given = fields["formats"] {
            guard case .object(let object) = given else {
                throw Refusal(message: "\(Self.item) contains 'formats' with wrong type")
            }
            formats = object
        } else {
            for name in ["http-response", "http-stream", "ws-message"] where fields[name] != nil {
                formats[name] = fields[name]
            }
        }
        guard !formats.isEmpty else { throw Refusal(message: "no formats specified") }

        var contentType: String?
        var payloads: [String: [UInt8]] = [:]
        var response: GripInstruction.Response?
        var closesStreams = false
        for (name, dataKey) in [("http-response", "body"), ("http-stream", "content"), ("ws-message", "content")] {
            guard let format = formats[name] else { continue }
            let label = "'\(name)'"
            guard case .object(let object) = format else { throw Refusal(message: "\(label) is not an object") }
            if let action = object["action"] {
                guard case .string(let text) = action else {
                    throw Refusal(message: "\(label) contains 'action' with wrong type")
                }
                if name == "http-stream" && text == "close" {
                    closesStreams = true
                    continue
                }
                guard text == "send" else {
                    throw Refusal(message: "\(label) action '\(text)' is not supported by this gateway")
                }
            }
            payloads[name] = try Self.payload(object, key: dataKey, label: label)
            if name == "http-response" {
                response = try Self.response(object, body: payloads[name]!)
                contentType = response!.headers.last { $0.name.lowercased() == "content-type" }?.value
            }
        }
        let channel: ChannelName
        do {
            channel = try ChannelName(validating: channelText, maxLength: maxChannelNameLength)
        } catch {
            let reason = (error as? GatewayError)?.reason ?? "bad channel name"
            throw Refusal(message: "\(Self.item) contains 'channel' with an invalid name (\(reason))")
        }
        guard !payloads.isEmpty else { return Item(draft: nil, channel: channel, closesStreams: closesStreams) }
        let bytes = payloads["http-stream"] ?? payloads["ws-message"] ?? payloads["http-response"] ?? []
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw Refusal(message: "\(Self.item) content is not UTF-8 (the gateway's messages are text)")
        }
        var id: String?
        if case .string(let given)? = fields["id"] { id = given }
        var webSocketContent: ByteBuffer?
        if let bytes = payloads["ws-message"], bytes != Array(text.utf8) {
            guard let webSocketText = String(validating: bytes, as: UTF8.self) else {
                throw Refusal(message: "\(Self.item) content is not UTF-8 (the gateway's messages are text)")
            }
            webSocketContent = ByteBuffer(string: webSocketText)
        }
        let grip = GripContent(id: id, response: response,
                               streamContent: payloads["http-stream"].map { ByteBuffer(bytes: $0) },
                               webSocketContent: webSocketContent)
        let validType = try? contentType.map(PublishRequest.validateContentType)
        let draft = MessageDraft(channel: channel, contentType: validType ?? nil, data: ByteBuffer(string: text),
                                 grip: grip)
        return Item(draft: draft, channel: channel, closesStreams: closesStreams)
    }

    /// The `http-response` format: `code` (default 200), `reason`, `headers`, and the body already read.
    private static func response(_ object: [String: JSONValue], body: [UInt8]) throws(Refusal) -> GripInstruction.Response {
        var status = 200
        if let code = object["code"] {
            guard case .number(let number) = code, number == number.rounded(), number >= 100, number <= 999 else {
                throw Refusal(message: "'http-response' contains 'code' with wrong type")
            }
            status = Int(number)
        }
        var reason = HTTPStatusPhrase.phrase(for: status)
        switch object["reason"] {
        case nil: break
        case .string(let text)?:
            guard !text.utf8.contains(where: { $0 < 0x20 && $0 != 0x09 }) else {
                throw Refusal(message: "'http-response' contains 'reason' with control characters")
            }
            if !text.isEmpty { reason = text }
        default: throw Refusal(message: "'http-response' contains 'reason' with wrong type")
        }
        let headers: [(name: String, value: String)]
        do {
            headers = try GripInstruction.headers(object["headers"])
        } catch {
            throw Refusal(message: "'http-response' \(error.message)")
        }
        return GripInstruction.Response(status: status, reason: reason, headers: headers, body: body)
    }

    /// The bytes of `key` (a string) or `key-bin` (base64) in a format; the http-response body may be absent (empty).
    private static func payload(_ object: [String: JSONValue], key: String, label: String) throws(Refusal) -> [UInt8] {
        if let binary = object["\(key)-bin"] {
            guard case .string(let base64) = binary, let bytes = Data(base64Encoded: base64) else {
                throw Refusal(message: "\(label) contains '\(key)-bin' with wrong type")
            }
            return Array(bytes)
        }
        if let value = object[key] {
            guard case .string(let text) = value else { throw Refusal(message: "\(label) contains '\(key)' with wrong type") }
            return Array(text.utf8)
        }
        if key == "body" { return [] }
        throw Refusal(message: "\(label) does not contain '\(key)' or '\(key)-bin'")
    }
}

/// Any JSON value, for bodies whose shape is checked field by field.
public enum JSONValue: Sendable, Equatable, Decodable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }
}
