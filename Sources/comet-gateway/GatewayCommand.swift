import ArgumentParser
import CometCore
import CometGateway
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// `comet-gateway`: runs one gateway node until SIGTERM or SIGINT, then drains and exits 0.
@main
struct GatewayCommand: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "comet-gateway",
        abstract: "A Comet push gateway: browsers subscribe, backends publish with HTTP webhooks.",
        version: version
    )

    @Option(name: .long, help: "A TOML configuration file (see gateway.conf.example).")
    var config: String?

    @Option(name: .long, help: "Public listener, HOST:PORT (overrides server.listen; default 0.0.0.0:8080).")
    var listen: String?

    @Option(name: .customLong("publish-listen"), help: "Publisher listener, HOST:PORT (overrides server.publish_listen; default 127.0.0.1:8081).")
    var publishListen: String?

    @Option(name: .long, help: "Event-loop threads (overrides server.threads; default: one per core).")
    var threads: Int?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (overrides log.level; default info).")
    var logLevel: String?

    func run() async throws {
        let configuration: GatewayConfiguration
        do {
            configuration = try self.loadConfiguration()
            // A certificate or key that cannot be used stops the gateway here, before it binds anything.
            _ = try TLSSetup.serverContext(for: configuration)
        } catch let error as ConfigurationError {
            Self.fail(error.description)
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = Logger.Level(rawValue: configuration.logLevel) ?? .info
            return handler
        }
        ProcessTuning.apply()
        let logger = Logger(label: "comet-gateway")
        let gateway = Gateway(configuration: configuration, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: gateway)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        do {
            try await group.run()
        } catch {
            logger.critical("gateway failed", metadata: ["error": "\(error)"])
            throw ExitCode.failure
        }
    }

    private func loadConfiguration() throws -> GatewayConfiguration {
        var configuration = GatewayConfiguration()
        if let path = self.config {
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw ConfigurationError(file: path, key: nil, message: "cannot read the file (\(error.localizedDescription))")
            }
            configuration = try ConfigFileParser.parse(text, file: path)
        }
        do {
            if let listen { configuration.server.listen = try ListenAddress(parsing: listen) }
            if let publishListen { configuration.server.publishListen = try ListenAddress(parsing: publishListen) }
        } catch var error as ConfigurationError {
            error.key = self.listen != nil ? "--listen/--publish-listen" : "--publish-listen"
            throw error
        }
        if let threads {
            guard threads >= 0 else { throw ConfigurationError(key: "--threads", message: "must be 0 or more") }
            configuration.server.threads = threads
        }
        if let logLevel { configuration.logLevel = logLevel }
        do {
            try configuration.validate()
        } catch var error as ConfigurationError {
            if error.key == "log.level", self.logLevel != nil { error.key = "--log-level" }
            error.file = self.config
            throw error
        }
        return configuration
    }

    private static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("comet-gateway: \(message)\n".utf8))
        Foundation.exit(78)  // EX_CONFIG
    }
}
