import CometCore
import Testing

@Suite("ListenAddress and GatewayConfiguration")
struct GatewayConfigurationTests {
    @Test(
        "parses HOST:PORT and [IPV6]:PORT",
        arguments: [
            ("0.0.0.0:8080", "0.0.0.0", 8080), ("localhost:0", "localhost", 0), ("example.com:65535", "example.com", 65535),
            ("[::1]:9000", "::1", 9000), ("[::]:80", "::", 80), ("[fe80::1%eth0]:443", "fe80::1%eth0", 443),
        ]
    )
    func parses(_ text: String, _ host: String, _ port: Int) throws {
        let address = try ListenAddress(parsing: text)
        #expect(address.host == host)
        #expect(address.port == port)
    }

    @Test("rejects malformed addresses", arguments: ["", "8080", "host", "host:", ":1", "host:65536", "host:-1", "host:x", "[::1]", "[::1]:", "[::1]9000", "[]:1", "[::1"])
    func rejects(_ text: String) {
        #expect(throws: ConfigurationError.self) { try ListenAddress(parsing: text) }
    }

    @Test("an unbracketed IPv6 address or a signed port is rejected")
    func ambiguousForms() {
        // `fe80::1:8080` is itself a valid IPv6 address; reading it as fe80::1 port 8080 is a guess.
        #expect(throws: ConfigurationError.self) { try ListenAddress(parsing: "fe80::1:8080") }
        #expect(throws: ConfigurationError.self) { try ListenAddress(parsing: "::1:9000") }
        #expect(throws: ConfigurationError.self) { try ListenAddress(parsing: "host:+80") }
    }

    @Test("description brackets IPv6 hosts and round-trips")
    func description() throws {
        for address in [ListenAddress(host: "::1", port: 9000), ListenAddress(host: "10.1.2.3", port: 1), ListenAddress(host: "localhost", port: 80)] {
            #expect(try ListenAddress(parsing: address.description) == address)
        }
        #expect(ListenAddress(host: "::1", port: 9000).description == "[::1]:9000")
        #expect(ListenAddress(host: "127.0.0.1", port: 8081).description == "127.0.0.1:8081")
    }

    @Test("loopback hosts", arguments: ["127.0.0.1", "127.1.2.3", "::1", "localhost"])
    func loopback(_ host: String) {
        #expect(ListenAddress(host: host, port: 1).isLoopback)
    }

    @Test("non-loopback hosts", arguments: ["0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "1.127.0.0", "example.com", "localhost.example.com"])
    func notLoopback(_ host: String) {
        #expect(!ListenAddress(host: host, port: 1).isLoopback)
    }

    @Test("a host name that merely starts with 127. is not loopback")
    func hostNameStartingWith127() {
        // `127.attacker.example` resolves wherever DNS says; treating it as loopback lets publish_listen bind a public
        // address without a publish key.
        #expect(!ListenAddress(host: "127.attacker.example", port: 8081).isLoopback)
    }

    @Test("validate requires a publish key for a non-loopback publish listener")
    func validatePublishKey() throws {
        var configuration = GatewayConfiguration()
        configuration.server.publishListen = ListenAddress(host: "0.0.0.0", port: 8081)
        let missing = #expect(throws: ConfigurationError.self) { try configuration.validate() }
        #expect(missing?.key == "server.publish_key")
        configuration.server.publishKey = ""
        #expect(throws: ConfigurationError.self) { try configuration.validate() }
        configuration.server.publishKey = "key"
        #expect(throws: Never.self) { try configuration.validate() }
    }

    @Test("validate checks the broker type and the log level")
    func validateEnums() {
        for level in ["trace", "debug", "info", "notice", "warning", "error", "critical"] {
            var configuration = GatewayConfiguration()
            configuration.logLevel = level
            #expect(throws: Never.self) { try configuration.validate() }
        }
        var badLevel = GatewayConfiguration()
        badLevel.logLevel = "INFO"
        let levelError = #expect(throws: ConfigurationError.self) { try badLevel.validate() }
        #expect(levelError?.key == "log.level")
        var badBroker = GatewayConfiguration()
        badBroker.broker.type = "kafka"
        let brokerError = #expect(throws: ConfigurationError.self) { try badBroker.validate() }
        #expect(brokerError?.key == "broker.type")
        var badURL = GatewayConfiguration()
        badURL.broker.type = "redis"
        badURL.broker.redisURL = "rediss://cache:6380"
        #expect((#expect(throws: ConfigurationError.self) { try badURL.validate() })?.key == "broker.redis_url")
        var badPrefix = GatewayConfiguration()
        badPrefix.broker.type = "redis"
        badPrefix.broker.keyPrefix = "a{b}"
        #expect((#expect(throws: ConfigurationError.self) { try badPrefix.validate() })?.key == "broker.key_prefix")
        var redis = GatewayConfiguration()
        redis.broker.type = "redis"
        redis.broker.redisURL = "redis://:pw@10.0.0.5:6380/2"
        #expect(throws: Never.self) { try redis.validate() }
    }

    @Test("subscribeLimits mirrors the configuration")
    func subscribeLimits() {
        var configuration = GatewayConfiguration()
        configuration.limits.maxChannelsPerSubscription = 3
        configuration.limits.maxChannelNameLength = 40
        configuration.transports.pollTimeout = 12
        #expect(configuration.subscribeLimits == SubscribeLimits(maxChannels: 3, maxChannelNameLength: 40, pollTimeout: 12))
    }
}
