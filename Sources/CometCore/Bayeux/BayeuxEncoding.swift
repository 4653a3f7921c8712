import NIOCore

/// The JSON that Bayeux clients receive: messages delivered on a channel (rendered once per message and shared by
/// every Bayeux subscriber, ``WireFormat/bayeuxEvent``) and replies to their requests.
public enum BayeuxEncoding {
    /// The message as a Bayeux client receives it: `{"channel":"/chat/room1","id":"42","data":DATA}`.
    ///
    /// `DATA` is the payload itself when the publisher sent it as `application/json` (parameters allowed) and it is
    /// one valid JSON value (scalars included), otherwise the payload as a JSON string. Empty when the message's
    /// channel has no Bayeux name (an empty segment: `a..b`) or would name a protocol channel (`meta.…`,
    /// `service.…`), so that Bayeux subscribers skip it.
    public static func event(_ message: Message) -> ByteBuffer {
        var channel = message.channel.rawValue
        let mappable = channel.withUTF8 { name in
            name.first != UInt8(ascii: ".") && name.last != UInt8(ascii: ".")
                && !zip(name, name.dropFirst()).contains { $0 == UInt8(ascii: ".") && $1 == UInt8(ascii: ".") }
        }
        // `meta.x` and `service.x` would read as the protocol's own channels (`/meta/x`): Bayeux clients never see them.
        let first = channel.split(separator: ".", maxSplits: 1).first
        guard mappable, first != "meta", first != "service" else { return ByteBuffer() }
        let isJSON = Self.isJSONMediaType(message.contentType)
            && message.data.withUnsafeReadableBytes { JSONSyntax.isValid($0) }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(40 + channel.utf8.count + message.data.readableBytes + message.data.readableBytes / 8)
        buffer.writeStaticString("{\"channel\":\"/")
        channel.withUTF8 { name in
            for byte in name { buffer.writeInteger(byte == UInt8(ascii: ".") ? UInt8(ascii: "/") : byte) }
        }
        buffer.writeStaticString("\",\"id\":\"")
        buffer.writeString(String(message.id))
        buffer.writeStaticString("\",\"data\":")
        if isJSON {
            buffer.writeImmutableBuffer(message.data)
        } else {
            JSONEncoding.writeString(message.data, into: &buffer)
        }
        buffer.writeStaticString("}")
        return buffer
    }

    /// Whether a `Content-Type` is `application/json`, parameters allowed, in any case.
    public static func isJSONMediaType(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        let type = contentType.split(separator: ";", maxSplits: 1).first ?? ""
        return type.trimmingASCIISpaces().lowercased() == "application/json"
    }
}

/// A reply to one Bayeux request message (`/meta/handshake`, `/meta/connect`, a publish, …): the fields the spec
/// names, written in a fixed order.
public struct BayeuxReply: Sendable {
    public var channel: String
    public var successful: Bool
    /// The request's `id`, echoed as it came (string or number).
    public var id: JSONValue?
    public var clientID: String?
    /// `code:args:message`, when not successful.
    public var error: String?
    /// `/meta/subscribe` and `/meta/unsubscribe`: the subscription as the client gave it (a string or a list).
    public var subscription: JSONValue?
    public var supportedConnectionTypes: [String]?
    public var version: String?
    public var advice: JSONValue?
    /// `advice` already encoded (written when ``advice`` is nil): a node's fixed advice, encoded once.
    public var encodedAdvice: ByteBuffer?
    public var ext: JSONValue?
    /// A delivery's `data` (a service's answer); written only when set.
    public var data: JSONValue?

    public init(channel: String, successful: Bool, id: JSONValue?) {
        self.channel = channel
        self.successful = successful
        self.id = id
    }

    /// A refusal: `successful: false` with `error` (`code:args:message`).
    public static func failure(_ channel: String, id: JSONValue?, clientID: String? = nil, error: String,
                               advice: JSONValue? = nil) -> BayeuxReply {
        var reply = BayeuxReply(channel: channel, successful: false, id: id)
        reply.clientID = clientID
        reply.error = error
        reply.advice = advice
        return reply
    }

    /// Writes the reply object.
    public func write(into buffer: inout ByteBuffer) {
        buffer.writeStaticString("{\"channel\":")
        JSONEncoding.writeString(self.channel, into: &buffer)
        buffer.writeString(self.successful ? ",\"successful\":true" : ",\"successful\":false")
        if let id = self.id {
            buffer.writeStaticString(",\"id\":")
            id.write(into: &buffer)
        }
        if let clientID = self.clientID {
            buffer.writeStaticString(",\"clientId\":")
            JSONEncoding.writeString(clientID, into: &buffer)
        }
        if let error = self.error {
            buffer.writeStaticString(",\"error\":")
            JSONEncoding.writeString(error, into: &buffer)
        }
        if let subscription = self.subscription {
            buffer.writeStaticString(",\"subscription\":")
            subscription.write(into: &buffer)
        }
        if let types = self.supportedConnectionTypes {
            buffer.writeStaticString(",\"supportedConnectionTypes\":")
            JSONValue.array(types.map { .string($0) }).write(into: &buffer)
        }
        if let version = self.version {
            buffer.writeStaticString(",\"version\":")
            JSONEncoding.writeString(version, into: &buffer)
        }
        if let advice = self.advice {
            buffer.writeStaticString(",\"advice\":")
            advice.write(into: &buffer)
        } else if let advice = self.encodedAdvice {
            buffer.writeStaticString(",\"advice\":")
            buffer.writeImmutableBuffer(advice)
        }
        if let ext = self.ext {
            buffer.writeStaticString(",\"ext\":")
            ext.write(into: &buffer)
        }
        if let data = self.data {
            buffer.writeStaticString(",\"data\":")
            data.write(into: &buffer)
        }
        buffer.writeStaticString("}")
    }

    /// The reply object alone.
    public var bytes: ByteBuffer {
        var buffer = ByteBuffer()
        self.write(into: &buffer)
        return buffer
    }
}

extension Substring {
    fileprivate func trimmingASCIISpaces() -> Substring {
        var text = self
        while text.first == " " || text.first == "\t" { text = text.dropFirst() }
        while text.last == " " || text.last == "\t" { text = text.dropLast() }
        return text
    }
}
