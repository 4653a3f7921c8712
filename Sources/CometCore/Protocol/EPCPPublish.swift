import FoundationEssentials
import NIOCore

/// `POST /publish/` as Pushpin serves it (EPCP, the Extensible Pubsub Control Protocol): a body
/// `{"items": [{"channel", "id"?, "prev-id"?, "formats": {"http-response"?, "http-stream"?, "ws-message"?}}]}`, with
/// Pushpin's error texts, so that backends written for Pushpin (and its `pubcontrol` / `gripcontrol` libraries)
/// publish to the gateway unchanged.
///
/// Each item becomes one message on its channel; its `data` is the item's `http-stream` content, or else its
/// `ws-message` content, or else its `http-response` body (`content-bin` / `body-bin`: base64), which must be UTF-8.
/// Its `content_type` is the `http-response` format's `Content-Type` header when there is one. `id` and `prev-id` are
/// read and checked for type, then not used: the gateway numbers every message itself. An `action` other than `send`
/// (`close`, `hint`, `refresh`) is refused: the gateway has no equivalent yet.
public enum EPCPPublish {
    /// The path of the endpoint (also served with a trailing slash).
    public static let path = "/publish"

    /// A refusal: the status line's text is always `Bad Request`; `message` is Pushpin's body (without its newline).
    public struct Refusal: Error, Sendable, Equatable {
        public var message: String
    }

    /// Parses a publish body into drafts, validating everything before anything is published.
    public static func parse(body: ByteBuffer, maxItems: Int, maxChannelNameLength: Int) throws(Refusal) -> [MessageDraft] {
        let document: JSONValue
        do {
            document = try body.withUnsafeReadableBytes { try JSONDecoder().decode(JSONValue.self, from: Data($0)) }
        } catch {
            throw Refusal(message: "Body is not valid JSON.")
        }
        guard case .object(let root) = document else { throw Refusal(message: "Invalid format.") }
        guard let items = root["items"] else {
            throw Refusal(message: "Invalid format: object does not contain 'items'")
        }
        guard case .array(let list) = items else {
            throw Refusal(message: "Invalid format: object contains 'items' with wrong type")
        }
        guard list.count <= maxItems else {
            throw Refusal(message: "Invalid format: more than \(maxItems) items (limits.max_batch_messages)")
        }
        var drafts: [MessageDraft] = []
        drafts.reserveCapacity(list.count)
        for item in list {
            do {
                drafts.append(try Self.draft(item, maxChannelNameLength: maxChannelNameLength))
            } catch {
                throw Refusal(message: "Invalid format: \(error.message)")
            }
        }
        return drafts
    }

    private static let item = "publish item object"

    private static func draft(_ value: JSONValue, maxChannelNameLength: Int) throws(Refusal) -> MessageDraft {
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
        for (name, dataKey) in [("http-response", "body"), ("http-stream", "content"), ("ws-message", "content")] {
            guard let format = formats[name] else { continue }
            let label = "'\(name)'"
            guard case .object(let object) = format else { throw Refusal(message: "\(label) is not an object") }
            if let action = object["action"] {
                guard case .string(let text) = action else {
                    throw Refusal(message: "\(label) contains 'action' with wrong type")
                }
                guard text == "send" else {
                    throw Refusal(message: "\(label) action '\(text)' is not supported by this gateway (only send)")
                }
            }
            payloads[name] = try Self.payload(object, key: dataKey, label: label)
            if name == "http-response", case .object(let headers)? = object["headers"] {
                for (header, value) in headers where header.lowercased() == "content-type" {
                    if case .string(let text) = value { contentType = text }
                }
            } else if name == "http-response", case .array(let pairs)? = object["headers"] {
                for pair in pairs {
                    if case .array(let parts) = pair, parts.count == 2, case .string(let header) = parts[0],
                       header.lowercased() == "content-type", case .string(let text) = parts[1] {
                        contentType = text
                    }
                }
            }
        }
        let bytes = payloads["http-stream"] ?? payloads["ws-message"] ?? payloads["http-response"] ?? []
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw Refusal(message: "\(Self.item) content is not UTF-8 (the gateway's messages are text)")
        }
        let channel: ChannelName
        do {
            channel = try ChannelName(validating: channelText, maxLength: maxChannelNameLength)
        } catch {
            let reason = (error as? GatewayError)?.reason ?? "bad channel name"
            throw Refusal(message: "\(Self.item) contains 'channel' with an invalid name (\(reason))")
        }
        let validType = try? contentType.map(PublishRequest.validateContentType)
        return MessageDraft(channel: channel, contentType: validType ?? nil, data: ByteBuffer(string: text))
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
