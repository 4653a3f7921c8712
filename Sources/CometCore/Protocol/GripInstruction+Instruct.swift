import FoundationEssentials

/// Reading an `application/grip-instruct` document (``GripInstruction/parse(status:reason:headers:body:maxChannels:maxChannelNameLength:)``).
extension GripInstruction {

    static func readInstruct(_ body: [UInt8], into instruction: inout GripInstruction,
                                     channels: inout [(name: String, prevID: String?)]) throws(Refusal) {
        let document: JSONValue
        do {
            document = try JSONDecoder().decode(JSONValue.self, from: Data(body))
        } catch {
            throw Refusal("application/grip-instruct body is not valid JSON")
        }
        guard case .object(let root) = document else { throw Refusal("instruct must be an object") }
        if let holdValue = root["hold"] {
            guard case .object(let hold) = holdValue else { throw Refusal("instruct 'hold' has the wrong type") }
            switch hold["mode"] {
            case nil, .string("response")?: instruction.mode = .response
            case .string("stream")?: instruction.mode = .stream
            default: throw Refusal("hold 'mode' must be 'response' or 'stream'")
            }
            guard case .array(let list)? = hold["channels"] else { throw Refusal("hold 'channels' missing or not a list") }
            channels = []
            for entry in list {
                guard case .object(let channel) = entry, case .string(let name)? = channel["name"] else {
                    throw Refusal("hold channel without a 'name' string")
                }
                switch channel["prev-id"] {
                case nil, .null?: channels.append((name, nil))
                case .string(let prevID)?: channels.append((name, prevID))
                default: throw Refusal("hold channel 'prev-id' has the wrong type")
                }
            }
            if let timeout = hold["timeout"] {
                instruction.timeout = try Self.integer(timeout, "hold 'timeout'", range: 0...(86_400 * 365))
            }
            if let value = hold["keep-alive"] {
                guard case .object(let keepAlive) = value else { throw Refusal("hold 'keep-alive' has the wrong type") }
                let content = try Self.bytes(keepAlive, key: "content") ?? []
                let timeout = try keepAlive["timeout"].map { v throws(Refusal) in
                    try Self.integer(v, "keep-alive 'timeout'", range: 0...(86_400 * 365))
                }
                instruction.keepAlive = content.isEmpty ? nil : KeepAlive(
                    content: content, timeout: max(1, timeout ?? Self.defaultKeepAliveTimeout), interval: false)
            }
        }
        instruction.response.headers = []
        instruction.response.body = []
        guard let responseValue = root["response"] else { return }
        guard case .object(let response) = responseValue else { throw Refusal("instruct 'response' has the wrong type") }
        if let code = response["code"] {
            instruction.response.status = try Self.integer(code, "response 'code'", range: 100...999)
            instruction.response.reason = HTTPStatusPhrase.phrase(for: instruction.response.status)
        }
        switch response["reason"] {
        case nil: break
        case .string(let reason)?:
            guard !reason.utf8.contains(where: { $0 < 0x20 && $0 != 0x09 }) else {
                throw Refusal("response 'reason' holds control characters")
            }
            if !reason.isEmpty { instruction.response.reason = reason }
        default: throw Refusal("response 'reason' has the wrong type")
        }
        instruction.response.headers = try Self.headers(response["headers"])
        instruction.response.body = try Self.bytes(response, key: "body") ?? []
    }

    /// `headers` as an object or a list of `[name, value]` pairs.
    static func headers(_ value: JSONValue?) throws(Refusal) -> [(name: String, value: String)] {
        switch value {
        case nil:
            return []
        case .object(let object)?:
            var headers: [(name: String, value: String)] = []
            for key in object.keys.sorted() {
                guard case .string(let text)? = object[key] else { throw Refusal("headers '\(key)' has the wrong type") }
                headers.append((key, text))
            }
            return try Self.checked(headers)
        case .array(let pairs)?:
            var headers: [(name: String, value: String)] = []
            for pair in pairs {
                guard case .array(let parts) = pair, parts.count == 2, case .string(let name) = parts[0],
                      case .string(let text) = parts[1]
                else { throw Refusal("headers must hold [name, value] string pairs") }
                headers.append((name, text))
            }
            return try Self.checked(headers)
        default:
            throw Refusal("'headers' has the wrong type")
        }
    }

    /// Header names must be tokens, values free of CR, LF and NUL: nothing an application sends can split a response.
    private static func checked(_ headers: [(name: String, value: String)]) throws(Refusal) -> [(name: String, value: String)] {
        for (name, value) in headers {
            guard !name.isEmpty, name.utf8.allSatisfy(HTTPRequestParser.isTokenByte) else {
                throw Refusal("header name is not a token")
            }
            guard !value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }) else {
                throw Refusal("header value holds CR, LF or NUL")
            }
        }
        return headers
    }

    /// The bytes of `key` (a string) or `key-bin` (base64); nil when neither is present.
    static func bytes(_ object: [String: JSONValue], key: String) throws(Refusal) -> [UInt8]? {
        if let binary = object["\(key)-bin"] {
            guard case .string(let base64) = binary, let data = Data(base64Encoded: base64) else {
                throw Refusal("'\(key)-bin' is not base64")
            }
            return Array(data)
        }
        guard let value = object[key] else { return nil }
        guard case .string(let text) = value else { throw Refusal("'\(key)' has the wrong type") }
        return Array(text.utf8)
    }

    private static func integer(_ value: JSONValue, _ what: String, range: ClosedRange<Int>) throws(Refusal) -> Int {
        guard case .number(let number) = value, number == number.rounded(), number >= Double(range.lowerBound),
              number <= Double(range.upperBound)
        else { throw Refusal("\(what) is not a valid integer") }
        return Int(number)
    }
}
