import TOMLKit

/// Reads `gateway.conf` (TOML) into a ``GatewayConfiguration``.
///
/// Every key is optional and defaults as documented in `gateway.conf.example`. Unknown sections and keys, values of
/// the wrong type and values out of range are errors that name the file, the line and the key.
public enum ConfigFileParser {
    private enum Kind {
        case bool(WritableKeyPath<GatewayConfiguration, Bool>)
        case int(WritableKeyPath<GatewayConfiguration, Int>, ClosedRange<Int>)
        case double(WritableKeyPath<GatewayConfiguration, Double>, ClosedRange<Double>)
        case string(WritableKeyPath<GatewayConfiguration, String>)
        case optionalString(WritableKeyPath<GatewayConfiguration, String?>)
        case address(WritableKeyPath<GatewayConfiguration, ListenAddress>)
        case stringList(WritableKeyPath<GatewayConfiguration, [String]>)
        case proxyRoutes
    }

    private static var schema: [String: [String: Kind]] {
        [
        "server": [
            "listen": .address(\.server.listen),
            "publish_listen": .address(\.server.publishListen),
            "publish_key": .optionalString(\.server.publishKey),
            "threads": .int(\.server.threads, 0...1024),
            "max_connections": .int(\.server.maxConnections, 0...10_000_000),
            "drain_timeout": .double(\.server.drainTimeout, 0...3600),
            "drain_retry": .int(\.server.drainRetry, 0...3_600_000),
            "direct_writes": .bool(\.server.directWrites),
            "demo": .bool(\.server.demo),
            "tls_certificate": .optionalString(\.server.tlsCertificate),
            "tls_private_key": .optionalString(\.server.tlsPrivateKey),
        ],
        "limits": [
            "max_channels_per_subscription": .int(\.limits.maxChannelsPerSubscription, 1...64),
            "max_channel_name_length": .int(\.limits.maxChannelNameLength, 1...1024),
            "max_publish_body_bytes": .int(\.limits.maxPublishBodyBytes, 1...(64 << 20)),
            "max_batch_messages": .int(\.limits.maxBatchMessages, 1...100_000),
            "max_uri_bytes": .int(\.limits.maxURIBytes, 256...(64 << 10)),
            "max_header_bytes": .int(\.limits.maxHeaderBytes, 1024...(64 << 10)),
            "max_outbound_bytes": .int(\.limits.maxOutboundBytes, 4096...(1 << 30)),
            "request_timeout": .double(\.limits.requestTimeout, 0.1...3600),
            "idle_timeout": .double(\.limits.idleTimeout, 0.1...86400),
        ],
        "transports": [
            "poll_timeout": .double(\.transports.pollTimeout, 1...3600),
            "heartbeat_interval": .double(\.transports.heartbeatInterval, 0.1...3600),
            "sse_retry": .int(\.transports.sseRetry, 0...3_600_000),
            "allowed_origins": .stringList(\.transports.allowedOrigins),
            "iframe_padding": .int(\.transports.iframePadding, 0...65536),
            "iframe_max_bytes": .int(\.transports.iframeMaxBytes, 1024...(1 << 30)),
        ],
        "history": [
            "max_messages": .int(\.history.maxMessages, 0...1_000_000),
            "max_bytes": .int(\.history.maxBytes, 0...(1 << 34)),
            "max_age": .double(\.history.maxAge, 0...(86400 * 365)),
        ],
        "websocket": [
            "max_frame_bytes": .int(\.webSocket.maxFrameBytes, 125...(16 << 20)),
            "max_message_bytes": .int(\.webSocket.maxMessageBytes, 125...(16 << 20)),
            "max_fragments": .int(\.webSocket.maxFragments, 1...1024),
            "max_messages_per_second": .int(\.webSocket.maxMessagesPerSecond, 1...10_000),
        ],
        "proxy": [
            "connect_timeout": .double(\.proxy.connectTimeout, 0.01...3600),
            "response_timeout": .double(\.proxy.responseTimeout, 0.01...86400),
            "trusted_proxies": .stringList(\.proxy.trustedProxies),
            "max_idle_connections": .int(\.proxy.maxIdleConnections, 0...100_000),
            "grip_signature_key": .optionalString(\.proxy.gripSignatureKey),
            "grip_signature_issuer": .string(\.proxy.gripSignatureIssuer),
            "route": .proxyRoutes,
        ],
        "auth": [
            "channel_token_key": .optionalString(\.auth.channelTokenKey),
            "authorize_url": .optionalString(\.auth.authorizeURL),
            "authorize_timeout": .double(\.auth.authorizeTimeout, 0.01...3600),
            "authorize_cache": .double(\.auth.authorizeCache, 0...86400),
        ],
        "broker": [
            "type": .string(\.broker.type),
            "redis_url": .string(\.broker.redisURL),
            "key_prefix": .string(\.broker.keyPrefix),
            "connect_timeout": .double(\.broker.connectTimeout, 0.01...600),
            "command_timeout": .double(\.broker.commandTimeout, 0.01...600),
        ],
        "bayeux": [
            "enabled": .bool(\.bayeux.enabled),
            "path": .string(\.bayeux.path),
            "timeout": .double(\.bayeux.timeout, 0...3600),
            "interval": .double(\.bayeux.interval, 0...3600),
            "session_timeout": .double(\.bayeux.sessionTimeout, 1...86400),
            "max_queue": .int(\.bayeux.maxQueue, 1...1_000_000),
            "max_sessions": .int(\.bayeux.maxSessions, 1...10_000_000),
            "max_batch_messages": .int(\.bayeux.maxBatchMessages, 1...10_000),
            "max_subscriptions": .int(\.bayeux.maxSubscriptions, 1...100_000),
            "relay_url": .optionalString(\.bayeux.relayURL),
            "relay_timeout": .double(\.bayeux.relayTimeout, 0.01...3600),
        ],
        "log": [
            "level": .string(\.logLevel)
        ],
        ]
    }

    /// Parses configuration text.
    /// - Parameters:
    ///   - text: The TOML document.
    ///   - file: The file name to report in errors.
    /// - Throws: ``ConfigurationError`` with the file, line and key at fault.
    public static func parse(_ text: String, file: String) throws -> GatewayConfiguration {
        if let (line, message) = Self.abortingConstruct(text) {
            throw ConfigurationError(file: file, line: line, key: nil, message: "TOML syntax error: \(message)")
        }
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigurationError(
                file: file,
                line: error.source.begin.line,
                key: nil,
                message: "TOML syntax error: \(error.description)"
            )
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        var configuration = GatewayConfiguration()
        let schema = self.schema
        for section in root.keys.sorted() {
            guard let keys = schema[section] else {
                throw ConfigurationError(
                    file: file,
                    line: lineOf(section: section, key: nil, in: lines),
                    key: section,
                    message: "unknown section (known: \(schema.keys.sorted().joined(separator: ", ")))"
                )
            }
            guard let table = root[section]?.table else {
                throw ConfigurationError(
                    file: file,
                    line: lineOf(section: nil, key: section, in: lines),
                    key: section,
                    message: "must be a table ([\(section)])"
                )
            }
            for key in table.keys.sorted() {
                let dotted = "\(section).\(key)"
                let line = lineOf(section: section, key: key, in: lines)
                func fail(_ message: String) -> ConfigurationError {
                    ConfigurationError(file: file, line: line, key: dotted, message: message)
                }
                guard let kind = keys[key] else {
                    if dotted == "transports.cors_origins" {
                        throw fail("renamed to allowed_origins, which is empty by default (same origin only)")
                    }
                    throw fail("unknown key (known in [\(section)]: \(keys.keys.sorted().joined(separator: ", ")))")
                }
                let value = table[key]!
                switch kind {
                case .bool(let path):
                    guard let flag = value.bool else { throw fail("must be true or false") }
                    configuration[keyPath: path] = flag
                case .int(let path, let range):
                    guard let number = value.int else { throw fail("must be an integer") }
                    guard range.contains(number) else { throw fail("must be from \(range.lowerBound) to \(range.upperBound)") }
                    configuration[keyPath: path] = number
                case .double(let path, let range):
                    guard let number = value.double ?? value.int.map(Double.init) else {
                        throw fail("must be a number")
                    }
                    guard range.contains(number) else { throw fail("must be from \(range.lowerBound) to \(range.upperBound)") }
                    configuration[keyPath: path] = number
                case .string(let path):
                    guard let string = value.string else { throw fail("must be a string") }
                    configuration[keyPath: path] = string
                case .optionalString(let path):
                    guard let string = value.string else { throw fail("must be a string") }
                    configuration[keyPath: path] = string.isEmpty ? nil : string
                case .address(let path):
                    guard let string = value.string else { throw fail("must be a string \"HOST:PORT\"") }
                    do {
                        configuration[keyPath: path] = try ListenAddress(parsing: string)
                    } catch let error as ConfigurationError {
                        throw fail(error.message)
                    }
                case .stringList(let path):
                    guard let array = value.array else { throw fail("must be an array of strings") }
                    var strings: [String] = []
                    for element in array {
                        guard let string = element.string else { throw fail("must be an array of strings") }
                        strings.append(string)
                    }
                    configuration[keyPath: path] = strings
                case .proxyRoutes:
                    guard let array = value.array else { throw fail("must be tables [[proxy.route]]") }
                    for element in array {
                        guard let table = element.table else { throw fail("must be tables [[proxy.route]]") }
                        configuration.proxy.routes.append(try Self.proxyRoute(table, fail: fail))
                    }
                }
            }
        }
        do {
            try configuration.validate()
        } catch var error as ConfigurationError {
            error.file = file
            if let key = error.key {
                let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
                error.line = lineOf(section: parts[0], key: parts.count > 1 ? parts[1] : nil, in: lines)
            }
            throw error
        }
        return configuration
    }

    /// The line and reason of the first construct the TOML library aborts on instead of reporting an error (found by
    /// scripts/fuzz.sh: a table header that does not start with a name, `[#` or `[é`), or nil. Also refuses any
    /// non-ASCII character outside a string or a comment, which TOML allows only there. Strings, comments and
    /// arrays spanning lines are followed, so valid documents pass.
    static func abortingConstruct(_ text: String) -> (line: Int, message: String)? {
        enum Context { case plain, basic, literal, multiBasic, multiLiteral, comment }
        var context = Context.plain
        var line = 1
        let bytes = Array(text.utf8)
        var index = 0
        /// Open `[` and `{` of the value being read (an array may span lines), and whether the line has had only
        /// blanks so far (a `[` there, outside a value, starts a table header).
        var depth = 0
        var lineStart = true
        func isNameStart(_ byte: UInt8) -> Bool {
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'")
        }
        func starts(_ marker: StaticString) -> Bool {
            let count = marker.utf8CodeUnitCount
            guard index + count <= bytes.count else { return false }
            return (0..<count).allSatisfy { bytes[index + $0] == marker.utf8Start[$0] }
        }
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\n") {
                line += 1
                lineStart = true
                if context == .comment || context == .basic || context == .literal { context = .plain }
                index += 1
                continue
            }
            let startsLine = lineStart && byte != UInt8(ascii: " ") && byte != UInt8(ascii: "\t") && byte != UInt8(ascii: "\r")
            if startsLine { lineStart = false }
            switch context {
            case .plain:
                if byte >= 0x80 { return (line, "a non-ASCII character outside a string or comment") }
                if startsLine, depth == 0, byte == UInt8(ascii: "[") {
                    var next = index + 1
                    if next < bytes.count, bytes[next] == UInt8(ascii: "[") { next += 1 }
                    while next < bytes.count, bytes[next] == UInt8(ascii: " ") || bytes[next] == UInt8(ascii: "\t") { next += 1 }
                    guard next < bytes.count, isNameStart(bytes[next]) else { return (line, "a table header needs a name") }
                    index = next
                    continue
                }
                if byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{") { depth += 1 }
                if byte == UInt8(ascii: "]") || byte == UInt8(ascii: "}") { depth = max(0, depth - 1) }
                if starts("\"\"\"") { context = .multiBasic; index += 3; continue }
                if starts("'''") { context = .multiLiteral; index += 3; continue }
                if byte == UInt8(ascii: "\"") { context = .basic }
                if byte == UInt8(ascii: "'") { context = .literal }
                if byte == UInt8(ascii: "#") { context = .comment }
            case .basic:
                if byte == UInt8(ascii: "\\") { index += 2; continue }
                if byte == UInt8(ascii: "\"") { context = .plain }
            case .literal:
                if byte == UInt8(ascii: "'") { context = .plain }
            case .multiBasic:
                if byte == UInt8(ascii: "\\") { index += 2; continue }
                if starts("\"\"\"") { context = .plain; index += 3; continue }
            case .multiLiteral:
                if starts("'''") { context = .plain; index += 3; continue }
            case .comment:
                break
            }
            index += 1
        }
        return nil
    }

    /// One `[[proxy.route]]`: `upstream` (required), `path_prefix` (default `/`), `host` (default: any).
    private static func proxyRoute(_ table: TOMLTable, fail: (String) -> ConfigurationError) throws -> ProxyConfiguration.Route {
        let known = ["host", "path_prefix", "upstream"]
        for key in table.keys where !known.contains(key) {
            throw fail("unknown key '\(key)' in a route (known: \(known.joined(separator: ", ")))")
        }
        guard let text = table["upstream"]?.string else { throw fail("a route needs upstream = \"http://HOST:PORT\"") }
        let upstream: ProxyConfiguration.Upstream
        do {
            upstream = try ProxyConfiguration.Upstream(parsing: text)
        } catch {
            throw fail("upstream: \(error.message)")
        }
        var route = ProxyConfiguration.Route(upstream: upstream)
        if let value = table["path_prefix"] {
            guard let prefix = value.string, prefix.hasPrefix("/") else { throw fail("path_prefix must be a path starting with /") }
            route.pathPrefix = prefix
        }
        if let value = table["host"] {
            guard let host = value.string, !host.isEmpty, !host.contains(where: { " /:".contains($0) }) || host.hasPrefix("[") else {
                throw fail("host must be a host name, without a port")
            }
            route.host = host.lowercased()
        }
        return route
    }

    /// Finds the 1-based line of `key` in `[section]` (or of the section itself when `key` is nil), since TOMLKit
    /// does not report where a value came from. A section may also be written as a dotted top-level key
    /// (`limits.max_uri_bytes = 1`) or a sub-table header (`[server.tls]`); both are found.
    private static func lineOf(section: String?, key: String?, in lines: [Substring]) -> Int? {
        var current: String? = nil  // the section whose body we are in (nil: top level)
        var sectionLine: Int?
        let wanted = [section, key].compactMap { $0 }.joined(separator: ".")
        for (index, raw) in lines.enumerated() {
            let line = raw.drop(while: { $0 == " " || $0 == "\t" })
            if line.hasPrefix("[") {
                let name = String(line.drop(while: { $0 == "[" }).prefix(while: { $0 != "]" }).trimmingSpaces)
                current = name
                if name == wanted || name.hasPrefix(wanted + ".") { return index + 1 }
                if let section, name == section { sectionLine = sectionLine ?? index + 1 }
                continue
            }
            // `name = …` where name is the key in its section, or the dotted path from the top level.
            let name = String(line.prefix(while: { $0 != "=" }).trimmingSpaces)
            guard line.contains("="), !name.isEmpty, !name.hasPrefix("#") else { continue }
            let path = (current.map { $0 + "." } ?? "") + name
            if path == wanted || path.hasPrefix(wanted + ".") { return index + 1 }
        }
        return sectionLine
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        self.drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed()
            .reduce(into: Substring()) { $0.append($1) }
    }
}
