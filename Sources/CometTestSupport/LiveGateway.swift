import CometCore
import CometGateway
import Logging
import NIOCore
import ServiceLifecycle

/// A gateway running on loopback (ports chosen by the system) for the duration of a test.
public struct LiveGateway: Sendable {
    /// The public listener's port.
    public let publicPort: Int
    /// The publisher listener's port.
    public let publishPort: Int
    /// The running gateway.
    public let gateway: Gateway
    private let serviceGroup: ServiceGroup

    /// The base URL of the public listener.
    public var publicURL: String { "http://127.0.0.1:\(self.publicPort)" }
    /// The base URL of the publisher listener.
    public var publishURL: String { "http://127.0.0.1:\(self.publishPort)" }

    /// Runs `body` against a fresh gateway, then drains it gracefully and waits until it stopped.
    /// - Parameters:
    ///   - configure: Adjusts the configuration (the listeners are forced to 127.0.0.1 with system-chosen ports).
    ///   - body: The test.
    public static func withGateway<T: Sendable>(
        configure: (inout GatewayConfiguration) -> Void = { _ in },
        _ body: (LiveGateway) async throws -> T
    ) async throws -> T {
        var configuration = GatewayConfiguration()
        configuration.server.threads = 2
        configure(&configuration)
        configuration.server.listen = ListenAddress(host: "127.0.0.1", port: 0)
        configuration.server.publishListen = ListenAddress(host: "127.0.0.1", port: 0)
        var logger = Logger(label: "comet-test")
        logger.logLevel = .warning
        let gateway = Gateway(configuration: configuration, logger: logger)
        let serviceGroup = ServiceGroup(
            configuration: .init(services: [.init(service: gateway)], logger: logger)
        )
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await serviceGroup.run() }
            let addresses = try await gateway.boundAddresses()
            let live = LiveGateway(
                publicPort: addresses.publicAddress.port!,
                publishPort: addresses.publishAddress.port!,
                gateway: gateway,
                serviceGroup: serviceGroup
            )
            do {
                let result = try await body(live)
                await serviceGroup.triggerGracefulShutdown()
                try await group.waitForAll()
                return result
            } catch {
                await serviceGroup.triggerGracefulShutdown()
                try? await group.waitForAll()
                throw error
            }
        }
    }

    /// Starts the graceful drain now (as SIGTERM would) without waiting for it.
    public func triggerShutdown() async {
        await self.serviceGroup.triggerGracefulShutdown()
    }
}
