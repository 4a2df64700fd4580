import Foundation

/// Turns decoding errors into one readable line.
public enum JSONErrors {
    public static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let ctx):
            return "missing field \"\(path(ctx.codingPath + [key]))\""
        case DecodingError.typeMismatch(_, let ctx), DecodingError.valueNotFound(_, let ctx):
            return "wrong type at \"\(path(ctx.codingPath))\""
        case DecodingError.dataCorrupted(let ctx):
            if let s = ctx.underlyingError as? StrataError { return s.message }
            return ctx.codingPath.isEmpty ? "malformed JSON" : "invalid value at \"\(path(ctx.codingPath))\""
        case let s as StrataError:
            return s.message
        default:
            return "malformed JSON"
        }
    }

    static func path(_ keys: [CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
}
