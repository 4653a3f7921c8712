import CometCore
import Foundation
import Testing

@Suite("ConfigFileParser")
struct ConfigFileParserTests {
    static let file = "/etc/comet/gateway.conf"

    /// The repository root, from this file's path (Tests/CometCoreTests/ConfigFileParserTests.swift).
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let exampleURL = repositoryRoot.appendingPathComponent("gateway.conf.example")
    static let exampleExists = FileManager.default.fileExists(atPath: exampleURL.path)

    static func parse(_ text: String) throws -> GatewayConfiguration {
        try ConfigFileParser.parse(text, file: Self.file)
    }

    /// Parses `text`, expects a ``ConfigurationError`` and checks its file, line and key.
    @discardableResult
    static func expectError(
        _ text: String,
        line: Int?,
        key: String?,
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> ConfigurationError? {
        do {
            let configuration = try Self.parse(text)
            Issue.record("expected a ConfigurationError, parsed \(configuration)", sourceLocation: sourceLocation)
            return nil
        } catch let error as ConfigurationError {
            #expect(error.file == Self.file, sourceLocation: sourceLocation)
            #expect(error.line == line, "line of: \(error)", sourceLocation: sourceLocation)
            #expect(error.key == key, "key of: \(error)", sourceLocation: sourceLocation)
            #expect(!error.message.isEmpty, sourceLocation: sourceLocation)
            #expect(error.description.hasPrefix(Self.file), sourceLocation: sourceLocation)
            if let key {
                #expect(error.description.contains(key), sourceLocation: sourceLocation)
            }
            return error
        } catch {
            Issue.record("expected a ConfigurationError, got \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    // MARK: defaults

    @Test("an empty file gives the defaults")
    func emptyFile() throws {
        #expect(try Self.parse("") == GatewayConfiguration())
        #expect(try Self.parse("# only a comment\n\n   \n") == GatewayConfiguration())
        #expect(try Self.parse("[server]\n[limits]\n[transports]\n[history]\n[broker]\n[log]\n") == GatewayConfiguration())
    }

    @Test(
        "the repository's gateway.conf.example parses to exactly the defaults",
        .enabled(if: exampleExists, "gateway.conf.example does not exist at the repository root yet")
    )
    func exampleFileIsDefaults() throws {
        let text = try String(contentsOf: Self.exampleURL, encoding: .utf8)
        let parsed = try ConfigFileParser.parse(text, file: Self.exampleURL.path)
        #expect(parsed == GatewayConfiguration())
    }

    @Test(
        "the repository's gateway.conf.example documents every key",
        .enabled(if: exampleExists, "gateway.conf.example does not exist at the repository root yet")
    )
    func exampleFileHasEveryKey() throws {
        let example = try String(contentsOf: Self.exampleURL, encoding: .utf8)
        let documented = Self.dottedKeys(in: example)
        let all = Self.dottedKeys(in: Self.fullConfig)
        #expect(all.count == 33)  // 9 + 9 + 6 + 4 + 3 + 1 + 1 keys in the schema
        #expect(all.subtracting(documented).isEmpty, "keys missing from gateway.conf.example")
    }

    /// `section.key` for every uncommented `key = value` line under a `[section]` header.
    static func dottedKeys(in text: String) -> Set<String> {
        var section = ""
        var keys: Set<String> = []
        for rawLine in text.split(separator: "\n") {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("[") {
                section = String(line.dropFirst().prefix(while: { $0 != "]" }))
            } else if !line.hasPrefix("#"), let equals = line.firstIndex(of: "=") {
                keys.insert(section + "." + line[..<equals].trimmingCharacters(in: .whitespaces))
            }
        }
        return keys
    }

    @Test("the documented defaults")
    func documentedDefaults() {
        let defaults = GatewayConfiguration()
        #expect(defaults.server.listen == ListenAddress(host: "0.0.0.0", port: 8080))
        #expect(defaults.server.publishListen == ListenAddress(host: "127.0.0.1", port: 8081))
        #expect(defaults.server.publishKey == nil)
        #expect(defaults.server.threads == 0)
        #expect(defaults.server.maxConnections == 0)
        #expect(defaults.server.drainTimeout == 10)
        #expect(defaults.server.drainRetry == 1000)
        #expect(defaults.server.directWrites)
        #expect(defaults.limits.maxChannelsPerSubscription == 16)
        #expect(defaults.limits.maxChannelNameLength == 128)
        #expect(defaults.limits.maxPublishBodyBytes == 65536)
        #expect(defaults.limits.maxBatchMessages == 1000)
        #expect(defaults.limits.maxURIBytes == 8192)
        #expect(defaults.limits.maxHeaderBytes == 16384)
        #expect(defaults.limits.maxOutboundBytes == 1_048_576)
        #expect(defaults.limits.requestTimeout == 10)
        #expect(defaults.limits.idleTimeout == 60)
        #expect(defaults.transports.pollTimeout == 30)
        #expect(defaults.transports.heartbeatInterval == 15)
        #expect(defaults.transports.sseRetry == 3000)
        #expect(defaults.transports.allowedOrigins == [])
        #expect(defaults.history == HistoryLimits(maxMessages: 100, maxBytes: 1 << 20, maxAge: 600))
        #expect(defaults.broker.type == "memory")
        #expect(defaults.logLevel == "info")
        #expect(throws: Never.self) { try defaults.validate() }
    }

    // MARK: a full file

    static let fullConfig = """
        # Every key, each with a value other than its default.
        [server]
        listen = "[::]:9090"
        publish_listen = "10.0.0.5:9091"
        publish_key = "s3cret"
        threads = 4
        max_connections = 50000
        drain_timeout = 2.5
        drain_retry = 500
        direct_writes = false
        demo = true

        [limits]
        max_channels_per_subscription = 8
        max_channel_name_length = 64
        max_publish_body_bytes = 131072
        max_batch_messages = 50
        max_uri_bytes = 4096
        max_header_bytes = 8192
        max_outbound_bytes = 65536
        request_timeout = 5.5
        idle_timeout = 120

        [transports]
        poll_timeout = 25
        heartbeat_interval = 7.5
        sse_retry = 1500
        allowed_origins = ["https://a.example", "https://b.example"]
        iframe_padding = 0
        iframe_max_bytes = 4096

        [websocket]
        max_frame_bytes = 1000
        max_message_bytes = 2000
        max_fragments = 4
        max_messages_per_second = 5

        [history]
        max_messages = 10
        max_bytes = 4096
        max_age = 30.5

        [broker]
        type = "memory"

        [log]
        level = "debug"
        """

    @Test("a full file sets every field")
    func fullFile() throws {
        var expected = GatewayConfiguration()
        expected.server.listen = ListenAddress(host: "::", port: 9090)
        expected.server.publishListen = ListenAddress(host: "10.0.0.5", port: 9091)
        expected.server.publishKey = "s3cret"
        expected.server.threads = 4
        expected.server.maxConnections = 50000
        expected.server.drainTimeout = 2.5
        expected.server.drainRetry = 500
        expected.server.directWrites = false
        expected.server.demo = true
        expected.limits.maxChannelsPerSubscription = 8
        expected.limits.maxChannelNameLength = 64
        expected.limits.maxPublishBodyBytes = 131_072
        expected.limits.maxBatchMessages = 50
        expected.limits.maxURIBytes = 4096
        expected.limits.maxHeaderBytes = 8192
        expected.limits.maxOutboundBytes = 65536
        expected.limits.requestTimeout = 5.5
        expected.limits.idleTimeout = 120
        expected.transports.pollTimeout = 25
        expected.transports.heartbeatInterval = 7.5
        expected.transports.sseRetry = 1500
        expected.transports.allowedOrigins = ["https://a.example", "https://b.example"]
        expected.transports.iframePadding = 0
        expected.transports.iframeMaxBytes = 4096
        expected.webSocket.maxFrameBytes = 1000
        expected.webSocket.maxMessageBytes = 2000
        expected.webSocket.maxFragments = 4
        expected.webSocket.maxMessagesPerSecond = 5
        expected.history = HistoryLimits(maxMessages: 10, maxBytes: 4096, maxAge: 30.5)
        expected.logLevel = "debug"

        let parsed = try Self.parse(Self.fullConfig)
        #expect(parsed == expected)
        #expect(parsed.subscribeLimits == SubscribeLimits(maxChannels: 8, maxChannelNameLength: 64, pollTimeout: 25))

        // Guard the test itself: every field but broker.type (which has a single valid value) is non-default, so
        // a key the parser ignored would show up as a difference above.
        let defaults = GatewayConfiguration()
        let fields: [(String, (GatewayConfiguration) -> AnyHashable)] = [
            ("listen", { $0.server.listen }), ("publish_listen", { $0.server.publishListen }),
            ("publish_key", { $0.server.publishKey }), ("threads", { $0.server.threads }),
            ("max_connections", { $0.server.maxConnections }), ("drain_timeout", { $0.server.drainTimeout }),
            ("drain_retry", { $0.server.drainRetry }), ("direct_writes", { $0.server.directWrites }),
            ("demo", { $0.server.demo }), ("iframe_padding", { $0.transports.iframePadding }),
            ("iframe_max_bytes", { $0.transports.iframeMaxBytes }),
            ("websocket.max_frame_bytes", { $0.webSocket.maxFrameBytes }),
            ("websocket.max_message_bytes", { $0.webSocket.maxMessageBytes }),
            ("websocket.max_fragments", { $0.webSocket.maxFragments }),
            ("websocket.max_messages_per_second", { $0.webSocket.maxMessagesPerSecond }),
            ("max_channels_per_subscription", { $0.limits.maxChannelsPerSubscription }),
            ("max_channel_name_length", { $0.limits.maxChannelNameLength }),
            ("max_publish_body_bytes", { $0.limits.maxPublishBodyBytes }),
            ("max_batch_messages", { $0.limits.maxBatchMessages }), ("max_uri_bytes", { $0.limits.maxURIBytes }),
            ("max_header_bytes", { $0.limits.maxHeaderBytes }), ("max_outbound_bytes", { $0.limits.maxOutboundBytes }),
            ("request_timeout", { $0.limits.requestTimeout }), ("idle_timeout", { $0.limits.idleTimeout }),
            ("poll_timeout", { $0.transports.pollTimeout }), ("heartbeat_interval", { $0.transports.heartbeatInterval }),
            ("sse_retry", { $0.transports.sseRetry }), ("allowed_origins", { $0.transports.allowedOrigins }),
            ("history.max_messages", { $0.history.maxMessages }), ("history.max_bytes", { $0.history.maxBytes }),
            ("history.max_age", { $0.history.maxAge }), ("log.level", { $0.logLevel }),
        ]
        for (name, field) in fields {
            #expect(field(parsed) != field(defaults), "\(name) should differ from its default in the full config")
            #expect(field(parsed) == field(expected), "\(name)")
        }
    }

    @Test("integers are accepted for fractional keys")
    func integerForDouble() throws {
        let parsed = try Self.parse("[transports]\npoll_timeout = 10\n[history]\nmax_age = 0\n")
        #expect(parsed.transports.pollTimeout == 10)
        #expect(parsed.history.maxAge == 0)
    }

    @Test("a boolean key takes only true or false")
    func booleanKey() throws {
        #expect(try Self.parse("[server]\ndirect_writes = true\n").server.directWrites)
        for value in ["1", "\"false\"", "0.0"] {
            #expect {
                try Self.parse("[server]\ndirect_writes = \(value)\n")
            } throws: { error in
                let error = try #require(error as? ConfigurationError)
                return error.key == "server.direct_writes" && error.line == 2 && error.message == "must be true or false"
            }
        }
    }

    @Test("an empty publish_key means none")
    func emptyPublishKey() throws {
        #expect(try Self.parse("[server]\npublish_key = \"\"\n").server.publishKey == nil)
    }

    @Test("range bounds are inclusive")
    func inclusiveBounds() throws {
        let low = try Self.parse("[limits]\nmax_channels_per_subscription = 1\nmax_uri_bytes = 256\nrequest_timeout = 0.1\n[history]\nmax_messages = 0\n")
        #expect(low.limits.maxChannelsPerSubscription == 1)
        #expect(low.limits.maxURIBytes == 256)
        #expect(low.limits.requestTimeout == 0.1)
        #expect(low.history.maxMessages == 0)
        let high = try Self.parse("[limits]\nmax_channels_per_subscription = 64\nmax_uri_bytes = 65536\n[transports]\npoll_timeout = 3600\n")
        #expect(high.limits.maxChannelsPerSubscription == 64)
        #expect(high.limits.maxURIBytes == 65536)
        #expect(high.transports.pollTimeout == 3600)
    }

    // MARK: addresses

    @Test("IPv6 [::1]:9000 parses and is loopback, so no publish key is needed")
    func ipv6Loopback() throws {
        let parsed = try Self.parse("[server]\npublish_listen = \"[::1]:9000\"\n")
        #expect(parsed.server.publishListen == ListenAddress(host: "::1", port: 9000))
        #expect(parsed.server.publishListen.isLoopback)
        #expect(parsed.server.publishKey == nil)
    }

    @Test("publish_listen on localhost or 127.x needs no key")
    func loopbackNames() throws {
        #expect(try Self.parse("[server]\npublish_listen = \"localhost:9000\"\n").server.publishListen.host == "localhost")
        #expect(try Self.parse("[server]\npublish_listen = \"127.0.0.2:9000\"\n").server.publishListen.port == 9000)
    }

    @Test("publish_listen on a non-loopback address without publish_key is an error at server.publish_key")
    func publishKeyRequired() {
        Self.expectError("[server]\npublish_listen = \"0.0.0.0:8081\"\n", line: 1, key: "server.publish_key")
        // An empty key is no key; the error points at it.
        Self.expectError("[log]\nlevel = \"info\"\n\n[server]\npublish_listen = \"[::]:8081\"\npublish_key = \"\"\n", line: 6, key: "server.publish_key")
    }

    @Test("publish_listen on a non-loopback address with a publish key is accepted")
    func publishKeyGiven() throws {
        let parsed = try Self.parse("[server]\npublish_listen = \"192.168.1.10:8081\"\npublish_key = \"k\"\n")
        #expect(parsed.server.publishListen == ListenAddress(host: "192.168.1.10", port: 8081))
        #expect(parsed.server.publishKey == "k")
    }

    @Test(
        "invalid addresses are errors at their key",
        arguments: ["8080", "host", "host:", ":8080", "host:65536", "host:-1", "host:http", "[::1]", "[::1]9000", "[]:80", "[::1:80", ""]
    )
    func invalidAddress(_ address: String) {
        Self.expectError("[server]\n\nlisten = \"\(address)\"\n", line: 3, key: "server.listen")
    }

    // MARK: errors

    @Test("a syntax error reports its line")
    func syntaxError() {
        let error = Self.expectError("[server]\nthreads = 4\nlisten = \n[limits]\n", line: 3, key: nil)
        #expect(error?.message.contains("TOML") == true)
        Self.expectError("# comment\n\n\n\n[server\n", line: 5, key: nil)
        Self.expectError("[server]\nthreads = 4\nthreads = 5\n", line: 3, key: nil)
    }

    @Test("an unknown section reports its header line and name")
    func unknownSection() {
        Self.expectError("[server]\nthreads = 2\n\n[srever]\nthreads = 2\n", line: 4, key: "srever")
    }

    @Test("an unknown key reports its line and dotted key")
    func unknownKey() {
        Self.expectError("[server]\nthreads = 2\n\n[limits]\nmax_channels_per_subscription = 4\nmax_chanels = 3\n", line: 6, key: "limits.max_chanels")
    }

    @Test("a key known in another section is unknown here")
    func keyInWrongSection() {
        Self.expectError("[history]\nthreads = 2\n", line: 2, key: "history.threads")
    }

    @Test(
        "a value of the wrong type reports its line and dotted key",
        arguments: [
            ("[server]\nthreads = \"four\"\n", 2, "server.threads"),
            ("[server]\n# the key\nthreads = 4.5\n", 3, "server.threads"),
            ("[server]\nthreads = true\n", 2, "server.threads"),
            ("[server]\nlisten = 8080\n", 2, "server.listen"),
            ("[server]\npublish_key = 42\n", 2, "server.publish_key"),
            ("[limits]\n\n\nrequest_timeout = \"10s\"\n", 4, "limits.request_timeout"),
            ("[transports]\nallowed_origins = \"*\"\n", 2, "transports.allowed_origins"),
            ("[transports]\nallowed_origins = [\"a\", 1]\n", 2, "transports.allowed_origins"),
            ("[broker]\ntype = [\"memory\"]\n", 2, "broker.type"),
            ("[log]\nlevel = 1\n", 2, "log.level"),
        ]
    )
    func wrongType(_ text: String, _ line: Int, _ key: String) {
        Self.expectError(text, line: line, key: key)
    }

    @Test(
        "a value out of range reports its line and dotted key",
        arguments: [
            ("[server]\nthreads = -1\n", 2, "server.threads"),
            ("[server]\nthreads = 1025\n", 2, "server.threads"),
            ("[server]\ndrain_timeout = -0.5\n", 2, "server.drain_timeout"),
            ("[limits]\nmax_uri_bytes = 100\n", 2, "limits.max_uri_bytes"),
            ("[limits]\nmax_channels_per_subscription = 0\n", 2, "limits.max_channels_per_subscription"),
            ("[limits]\nmax_channels_per_subscription = 65\n", 2, "limits.max_channels_per_subscription"),
            ("[limits]\nrequest_timeout = 0\n", 2, "limits.request_timeout"),
            ("[limits]\nidle_timeout = inf\n", 2, "limits.idle_timeout"),
            ("[transports]\npoll_timeout = nan\n", 2, "transports.poll_timeout"),
            ("[transports]\npoll_timeout = 0.5\n", 2, "transports.poll_timeout"),
            ("[transports]\nheartbeat_interval = -inf\n", 2, "transports.heartbeat_interval"),
            ("[history]\nmax_messages = 1000001\n", 2, "history.max_messages"),
            ("[history]\nmax_age = 1e12\n", 2, "history.max_age"),
            ("[history]\nmax_bytes = 9223372036854775807\n", 2, "history.max_bytes"),
        ]
    )
    func outOfRange(_ text: String, _ line: Int, _ key: String) {
        Self.expectError(text, line: line, key: key)
    }

    @Test("an unknown broker or log level is an error at its key")
    func crossFieldValidation() {
        Self.expectError("[broker]\ntype = \"kafka\"\n", line: 2, key: "broker.type")
        Self.expectError("[server]\nthreads = 1\n[log]\n\nlevel = \"verbose\"\n", line: 5, key: "log.level")
    }

    @Test("a section that is not a table is an error at its line")
    func sectionNotATable() {
        Self.expectError("server = 5\n", line: 1, key: "server")
    }

    @Test("a key before any section header reports its line")
    func keyOutsideSection() {
        // A forgotten `[server]` header: the key lands at the top level.
        Self.expectError("# gateway\nthreads = 4\n", line: 2, key: "threads")
    }

    @Test("keys written outside a plain `[section]` block report their line")
    func keysOutsideSectionBlocks() {
        // Valid TOML that places a key in a section without a `[section]` header line of that name.
        // A dotted key at the top level.
        Self.expectError("# gateway\nlimits.max_uri_bytes = 1\n", line: 2, key: "limits.max_uri_bytes")
        // A sub-table of a known section.
        Self.expectError("[server.tls]\ncert = \"x\"\n", line: 1, key: "server.tls")
    }

    @Test("indented keys and spaced headers are located")
    func indentation() {
        Self.expectError("  [ limits ]\n\t  max_uri_bytes   =   1\n", line: 2, key: "limits.max_uri_bytes")
    }

    @Test("ConfigurationError description names the file, line and key")
    func errorDescription() {
        let error = ConfigurationError(file: "g.conf", line: 7, key: "limits.max_uri_bytes", message: "must be from 256 to 65536")
        #expect(error.description == "g.conf:7: limits.max_uri_bytes: must be from 256 to 65536")
        #expect(ConfigurationError(key: nil, message: "oops").description == "configuration: oops")
    }
}
