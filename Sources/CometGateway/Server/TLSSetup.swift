import CometCore
import NIOSSL

/// The public listener's HTTPS, from `server.tls_certificate` and `server.tls_private_key`.
public enum TLSSetup {
    /// The TLS context for the configured certificate and key, or nil when HTTPS is not configured.
    /// - Throws: ``ConfigurationError`` naming the file that cannot be read or used.
    public static func serverContext(for configuration: GatewayConfiguration) throws(ConfigurationError) -> NIOSSLContext? {
        guard let certificatePath = configuration.server.tlsCertificate,
              let keyPath = configuration.server.tlsPrivateKey
        else { return nil }
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
        } catch {
            throw ConfigurationError(key: "server.tls_certificate", message: "cannot read a PEM certificate from \(certificatePath) (\(error))")
        }
        guard !chain.isEmpty else {
            throw ConfigurationError(key: "server.tls_certificate", message: "no certificate in \(certificatePath)")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        } catch {
            throw ConfigurationError(key: "server.tls_private_key", message: "cannot read a PEM private key from \(keyPath) (\(error))")
        }
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                           privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv12
        do {
            return try NIOSSLContext(configuration: tls)
        } catch {
            throw ConfigurationError(key: "server.tls_private_key",
                                     message: "the certificate and key do not make a TLS context (\(error))")
        }
    }
}
