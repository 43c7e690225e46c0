import Dispatch

/// The conversions asked of a loader, applied to every image of a data set.
struct Conversion {
    /// Convert to one channel.
    var grayscale: Bool
    /// Resize to `size x size`.
    var size: Int?
    /// How to resize: stretched, or torchvision's shorter side then centre crop.
    var resize: Preprocessing.Resize = .stretch
    /// The splits wanted. Readers whose splits are separate files (IDX, CIFAR-10) read only these; class
    /// folders are read whole, since their classes and shape come from both splits together.
    var splits: SplitSelection = .both

    /// Writes `image` converted to `target` as `(C, H, W)` bytes at `destination`.
    func write(_ image: Image, _ target: ImageShape, to destination: UnsafeMutablePointer<UInt8>) {
        image.writePlanar(target, resize: size == nil ? .stretch : resize, to: destination)
    }

    /// The shape an image of shape `natural` is converted to.
    func target(_ natural: ImageShape) -> ImageShape {
        ImageShape(channels: grayscale ? 1 : natural.channels,
                   height: size ?? natural.height, width: size ?? natural.width)
    }

    /// Throws unless `count` images of shape `target` fit `MemoryBudget.current`; `name` names their file or folder.
    func checkBudget(count: Int, target: ImageShape, name: String) throws(DataError) {
        do {
            try MemoryBudget.current.check(shape: [count, target.channels, target.height, target.width],
                                           for: "\(name) (\(count) images of \(target))")
        } catch {
            throw .overBudget(error)
        }
    }

    /// Converts `count` planar records of shape `natural`, record `i` starting at byte
    /// `offset + i * stride` of `bytes`, into one `(count, C, H, W)` buffer of shape `target(natural)`,
    /// once `checkBudget` has passed; `name` names the file(s) in its error.
    func convertRecords(_ bytes: [UInt8], count: Int, natural: ImageShape, offset: Int, stride: Int,
                        name: String) throws(DataError) -> [UInt8] {
        let target = target(natural)
        try checkBudget(count: count, target: target, name: name)
        var out = [UInt8](repeating: 0, count: count * target.count)
        if target == natural && (size == nil || resize == .stretch) {
            for i in 0..<count {
                let from = offset + i * stride
                out.replaceSubrange(i * target.count..<(i + 1) * target.count, with: bytes[from..<from + natural.count])
            }
            return out
        }
        out.withUnsafeMutableBufferPointer { out in
            let base = out.baseAddress!
            DispatchQueue.concurrentPerform(iterations: count) { i in
                let from = offset + i * stride
                let image = Image(planar: bytes[from..<from + natural.count], shape: natural)
                write(image, target, to: base + i * target.count)
            }
        }
        return out
    }
}
