import Foundation

#if FUZZING
/// libFuzzer's callback: one input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzTargets.run(FuzzTargets.selected, UnsafeBufferPointer(start: data, count: size))
    return 0
}

/// libFuzzer's driver, for a program with its own `main`.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// SwiftPM links an executable's entry point under this name; here it hands over to libFuzzer.
@_cdecl("comet_fuzz_main")
public func cometFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments, fuzzOneInput)
}

extension FuzzTargets {
    /// `COMET_FUZZ_TARGET`, read once.
    static let selected = ProcessInfo.processInfo.environment["COMET_FUZZ_TARGET"] ?? "http"
}
#else
@main
enum FuzzEntry {
    static func main() {
        print("comet-fuzz: the parsers' fuzz targets (\(FuzzTargets.names.joined(separator: ", "))); run them with scripts/fuzz.sh")
    }
}
#endif
