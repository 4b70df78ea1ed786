//! Length-prefixed Kafka frames: a 4-byte big-endian size, then that many bytes.
//!
//! The size is checked against `socket.request.max.bytes` before anything is allocated, so a
//! client announcing a 2 GiB frame costs the broker four bytes of reading, not two gigabytes.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Why a connection cannot go on reading frames. Each is connection-fatal.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {size} bytes exceeds socket.request.max.bytes {max}")]
    TooLarge { size: i64, max: usize },
    #[error("negative frame size {0}")]
    Negative(i32),
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one frame. `Ok(None)` is a clean end of stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_size: usize,
) -> Result<Option<Bytes>, FrameError> {
    let mut size_bytes = [0u8; 4];
    match reader.read_exact(&mut size_bytes).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let size = i32::from_be_bytes(size_bytes);
    if size < 0 {
        return Err(FrameError::Negative(size));
    }
    let size = size as usize;
    if size > max_size {
        return Err(FrameError::TooLarge {
            size: size as i64,
            max: max_size,
        });
    }
    let mut buf = BytesMut::zeroed(size);
    match reader.read_exact(&mut buf).await {
        Ok(_) => Ok(Some(buf.freeze())),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(FrameError::Truncated),
        Err(e) => Err(e.into()),
    }
}

/// Writes a frame whose body is the concatenation of `parts`, without joining them first: the
/// record bytes of a Fetch response go out straight from the log's buffers (DESIGN.md).
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    parts: &[Bytes],
) -> std::io::Result<()> {
    let size: usize = parts.iter().map(Bytes::len).sum();
    let size =
        i32::try_from(size).map_err(|_| std::io::Error::other("response larger than 2 GiB"))?;
    writer.write_all(&size.to_be_bytes()).await?;
    for part in parts {
        writer.write_all(part).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frame_over_limit_is_rejected_before_reading_body() {
        let data = (2_000_000_000i32).to_be_bytes().to_vec();
        let mut reader = &data[..];
        let err = read_frame(&mut reader, 1024).await.unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }), "{err}");
    }

    #[tokio::test]
    async fn truncated_frame_is_an_error_and_clean_eof_is_none() {
        let mut data = 10i32.to_be_bytes().to_vec();
        data.extend_from_slice(b"abc");
        let mut reader = &data[..];
        assert!(matches!(
            read_frame(&mut reader, 1024).await,
            Err(FrameError::Truncated)
        ));
        let empty: &[u8] = &[];
        let mut reader = empty;
        assert!(read_frame(&mut reader, 1024).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn frame_round_trips_from_parts() {
        let mut out = Vec::new();
        write_frame(
            &mut out,
            &[Bytes::from_static(b"ab"), Bytes::from_static(b"cde")],
        )
        .await
        .unwrap();
        let mut reader = &out[..];
        let frame = read_frame(&mut reader, 1024).await.unwrap().unwrap();
        assert_eq!(&frame[..], b"abcde");
    }

    #[tokio::test]
    async fn negative_size_is_rejected() {
        let data = (-5i32).to_be_bytes().to_vec();
        let mut reader = &data[..];
        assert!(matches!(
            read_frame(&mut reader, 1024).await,
            Err(FrameError::Negative(-5))
        ));
    }
}
