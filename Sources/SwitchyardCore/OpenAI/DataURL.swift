/// A base64 `data:` URL, `data:image/png;base64,iVBOR…`: how OpenAI carries inline images and
/// files, where Anthropic has a `base64` source with the media type apart.
struct DataURL: Sendable, Equatable {
    var mediaType: String
    var base64: String

    /// nil unless `url` is a `data:` URL with a media type and the `;base64` marker (a URL-encoded
    /// payload has no Anthropic form).
    init?(_ url: String) {
        guard url.hasPrefix("data:"), let comma = url.firstIndex(of: ",") else { return nil }
        let header = url[url.index(url.startIndex, offsetBy: 5)..<comma]
        let parameters = header.split(separator: ";", omittingEmptySubsequences: false)
        guard let type = parameters.first, !type.isEmpty, parameters.count >= 2, parameters.last == "base64" else { return nil }
        mediaType = type.lowercased()
        base64 = String(url[url.index(after: comma)...])
    }

    init(mediaType: String, base64: String) {
        self.mediaType = mediaType
        self.base64 = base64
    }

    var url: String { "data:\(mediaType);base64,\(base64)" }

    /// The image types Anthropic's image blocks take.
    static let imageMediaTypes: Set<String> = ["image/jpeg", "image/png", "image/gif", "image/webp"]
}
