//! What an uploaded file really is: type, dimensions and duration, read from its bytes.
//!
//! Completed jobs must describe the real upload, so nothing here trusts the client's filename or
//! `Content-Type`. The type is sniffed from magic bytes (`infer`), image dimensions come from the
//! image header (`imagesize`), and MP4/QuickTime dimensions and duration come from the `tkhd` and
//! `mvhd` boxes, found by walking the box tree with seeks so that a large video is never read whole.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// How the providers classify media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// A still image (Fansly type 1, OnlyFans `photo`).
    Image,
    /// An animated GIF (OnlyFans `gif`; Fansly treats it as an image).
    Gif,
    /// A video (Fansly type 2, OnlyFans `video`).
    Video,
    /// Audio (OnlyFans `audio`; Fansly does not take it).
    Audio,
    /// Anything else: the providers' processing rejects it.
    Unsupported,
}

/// What was learned from the bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaInfo {
    /// The sniffed MIME type, `application/octet-stream` when unknown.
    pub mimetype: &'static str,
    /// The canonical file extension for the type, used in CDN paths.
    pub extension: &'static str,
    /// The provider-facing class.
    pub kind: MediaKind,
    /// Pixel width, 0 when unknown.
    pub width: u32,
    /// Pixel height, 0 when unknown.
    pub height: u32,
    /// Duration in seconds for video, 0 otherwise.
    pub duration_secs: f64,
}

/// How many leading bytes [`probe`] wants in `head`; image headers fit in far less.
pub const HEAD_LEN: usize = 64 * 1024;

/// The type a file's first bytes show (`application/octet-stream` when they show none).
pub fn mimetype(head: &[u8]) -> &'static str {
    infer::get(head).map_or("application/octet-stream", |kind| kind.mime_type())
}

/// Reads type, dimensions and duration of the file at `path`, whose first bytes are `head`.
///
/// Never fails: a file it cannot read is reported as unsupported with zero dimensions, which the
/// job turns into a provider-shaped failure.
pub fn probe(path: &Path, head: &[u8]) -> MediaInfo {
    let sniffed = infer::get(head);
    let mimetype = mimetype(head);
    let extension = sniffed.map_or("bin", |kind| kind.extension());
    let kind = match mimetype {
        "image/gif" => MediaKind::Gif,
        "image/jpeg" | "image/png" | "image/webp" | "image/heif" | "image/avif" => MediaKind::Image,
        "video/mp4" | "video/quicktime" | "video/x-m4v" | "video/webm" => MediaKind::Video,
        audio if audio.starts_with("audio/") => MediaKind::Audio,
        _ => MediaKind::Unsupported,
    };
    let (width, height, duration_secs) = match kind {
        MediaKind::Image | MediaKind::Gif => {
            let size = imagesize::blob_size(head).or_else(|_| imagesize::size(path));
            size.map_or((0, 0, 0.0), |size| {
                (
                    u32::try_from(size.width).unwrap_or(0),
                    u32::try_from(size.height).unwrap_or(0),
                    0.0,
                )
            })
        }
        MediaKind::Video => File::open(path)
            .and_then(|mut file| mp4_dimensions(&mut file))
            .unwrap_or((0, 0, 0.0)),
        MediaKind::Audio | MediaKind::Unsupported => (0, 0, 0.0),
    };
    MediaInfo {
        mimetype,
        extension,
        kind,
        width,
        height,
        duration_secs,
    }
}

/// The largest dimensions that fit `width`×`height` scaled so the short side is `short_side`,
/// rounded down to even numbers as video encoders require (444×421 → 378×360, as Fansly shows).
pub fn scale_to_short_side(width: u32, height: u32, short_side: u32) -> (u32, u32) {
    let scale = |long: u32, short: u32| -> u32 {
        let scaled = u64::from(long) * u64::from(short_side) / u64::from(short.max(1));
        let even = scaled - scaled % 2;
        u32::try_from(even).unwrap_or(u32::MAX)
    };
    if width >= height {
        (scale(width, height), short_side)
    } else {
        (short_side, scale(height, width))
    }
}

/// Scales to a fixed width, keeping the aspect ratio (OnlyFans thumbnails are 300 wide).
pub fn scale_to_width(width: u32, height: u32, to_width: u32) -> (u32, u32) {
    let scaled = u64::from(height) * u64::from(to_width) / u64::from(width.max(1));
    (to_width, u32::try_from(scaled).unwrap_or(u32::MAX))
}

/// Walks an ISO-BMFF box tree for the first video track's `tkhd` size and the `mvhd` duration.
fn mp4_dimensions<R: Read + Seek>(reader: &mut R) -> io::Result<(u32, u32, f64)> {
    let end = reader.seek(SeekFrom::End(0))?;
    let moov = find_box(reader, 0, end, b"moov")?
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no moov box"))?;
    let mut duration_secs = 0.0;
    if let Some((start, _)) = find_box(reader, moov.0, moov.1, b"mvhd")? {
        reader.seek(SeekFrom::Start(start))?;
        let mut header = [0u8; 32];
        reader.read_exact(&mut header)?;
        let (timescale, duration) = if header[0] == 1 {
            (be_u32(&header[20..24]), be_u64(&header[24..32]))
        } else {
            (be_u32(&header[12..16]), u64::from(be_u32(&header[16..20])))
        };
        if timescale > 0 {
            duration_secs = duration as f64 / f64::from(timescale);
        }
    }
    let mut cursor = moov.0;
    let mut n_boxes = 0;
    while let Some((trak_start, trak_end)) = find_box(reader, cursor, moov.1, b"trak")? {
        n_boxes += 1;
        if n_boxes > 64 {
            break;
        }
        if let Some((start, tkhd_end)) = find_box(reader, trak_start, trak_end, b"tkhd")? {
            reader.seek(SeekFrom::Start(start))?;
            let mut tkhd = vec![0u8; usize::try_from((tkhd_end - start).min(128)).unwrap_or(0)];
            reader.read_exact(&mut tkhd)?;
            let offset = if tkhd.first() == Some(&1) { 88 } else { 76 };
            if let Some(size) = tkhd.get(offset..offset + 8) {
                let (width, height) = (be_u32(&size[..4]) >> 16, be_u32(&size[4..]) >> 16);
                if width > 0 && height > 0 {
                    return Ok((width, height, duration_secs));
                }
            }
        }
        cursor = trak_end;
    }
    Ok((0, 0, duration_secs))
}

/// Finds the first child box named `name` in `[start, end)`; returns its payload range.
fn find_box<R: Read + Seek>(
    reader: &mut R,
    start: u64,
    end: u64,
    name: &[u8; 4],
) -> io::Result<Option<(u64, u64)>> {
    let mut pos = start;
    let mut n_boxes = 0;
    while pos + 8 <= end && n_boxes < 4_096 {
        n_boxes += 1;
        reader.seek(SeekFrom::Start(pos))?;
        let mut header = [0u8; 8];
        reader.read_exact(&mut header)?;
        let mut size = u64::from(be_u32(&header[..4]));
        let mut header_len = 8;
        if size == 1 {
            let mut large = [0u8; 8];
            reader.read_exact(&mut large)?;
            size = be_u64(&large);
            header_len = 16;
        } else if size == 0 {
            size = end - pos;
        }
        let Some(box_end) = pos.checked_add(size).filter(|box_end| *box_end <= end) else {
            return Ok(None);
        };
        if size < header_len {
            return Ok(None);
        }
        if &header[4..8] == name {
            return Ok(Some((pos + header_len, box_end)));
        }
        pos = box_end;
    }
    Ok(None)
}

fn be_u32(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .take(4)
        .fold(0, |acc, byte| (acc << 8) | u32::from(*byte))
}

fn be_u64(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .take(8)
        .fold(0, |acc, byte| (acc << 8) | u64::from(*byte))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_like_the_fansly_seed() {
        assert_eq!(scale_to_short_side(444, 421, 360), (378, 360));
        assert_eq!(scale_to_short_side(1080, 1920, 720), (720, 1280));
    }

    #[test]
    fn thumbnails_keep_the_aspect_ratio() {
        assert_eq!(scale_to_width(600, 1088, 300), (300, 544));
    }

    #[test]
    fn random_bytes_are_unsupported_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, b"\x00\x01garbage").unwrap();
        let info = probe(&path, b"\x00\x01garbage");
        assert_eq!(info.kind, MediaKind::Unsupported);
        assert_eq!((info.width, info.height), (0, 0));
    }

    #[test]
    fn a_box_claiming_an_enormous_size_is_refused_not_overflowed() {
        let mut data = Vec::new();
        data.extend_from_slice(&[0, 0, 0, 1]);
        data.extend_from_slice(b"moov");
        data.extend_from_slice(&u64::MAX.to_be_bytes());
        let result = mp4_dimensions(&mut io::Cursor::new(data));
        assert!(result.is_err(), "{result:?}");
    }

    #[test]
    fn truncated_mp4_does_not_panic() {
        let mut data = Vec::new();
        data.extend_from_slice(&[0, 0, 0, 24]);
        data.extend_from_slice(b"ftypisom\0\0\x02\0isomiso2");
        data.extend_from_slice(&[0, 0, 0, 200]);
        data.extend_from_slice(b"moov");
        let result = mp4_dimensions(&mut io::Cursor::new(data));
        assert!(
            result.is_err(),
            "a moov box running past the end must be refused: {result:?}"
        );
    }
}
