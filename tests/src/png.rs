//! Reads the PNG screenshots headless Chromium writes (8-bit RGB or RGBA, not
//! interlaced) into RGBA pixels, so that a test can check what was drawn. zlib comes from
//! `flate2`, already in the tree through pingora (same backend, no new crate).

use std::io::Read;

use flate2::read::ZlibDecoder;

/// A decoded image: `width` × `height` RGBA pixels, row by row.
#[derive(Debug, Clone)]
pub struct Image {
    /// Pixels per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// 4 bytes per pixel.
    pub rgba: Vec<u8>,
}

impl Image {
    /// The pixel at `(x, y)`.
    pub fn pixel(&self, x: usize, y: usize) -> [u8; 4] {
        let at = (y * self.width + x) * 4;
        [
            self.rgba[at],
            self.rgba[at + 1],
            self.rgba[at + 2],
            self.rgba[at + 3],
        ]
    }

    /// How many pixels of the rectangle (all of it when `None`) are within `tolerance`
    /// (per channel) of `rgb`.
    pub fn count_near(
        &self,
        rgb: [u8; 3],
        tolerance: u8,
        area: Option<(usize, usize, usize, usize)>,
    ) -> usize {
        let (x0, y0, x1, y1) = area.unwrap_or((0, 0, self.width, self.height));
        let mut n = 0;
        for y in y0..y1.min(self.height) {
            for x in x0..x1.min(self.width) {
                let p = self.pixel(x, y);
                if (0..3).all(|c| p[c].abs_diff(rgb[c]) <= tolerance) {
                    n += 1;
                }
            }
        }
        n
    }
}

/// Decodes `bytes`.
pub fn decode(bytes: &[u8]) -> anyhow::Result<Image> {
    anyhow::ensure!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let mut at = 8;
    let (mut width, mut height, mut channels) = (0usize, 0usize, 0usize);
    let mut data = Vec::new();
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into()?) as usize;
        let kind = &bytes[at + 4..at + 8];
        let body = bytes
            .get(at + 8..at + 8 + len)
            .ok_or_else(|| anyhow::anyhow!("truncated chunk"))?;
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(body[0..4].try_into()?) as usize;
                height = u32::from_be_bytes(body[4..8].try_into()?) as usize;
                anyhow::ensure!(body[8] == 8, "bit depth {} not supported", body[8]);
                channels = match body[9] {
                    2 => 3,
                    6 => 4,
                    other => anyhow::bail!("color type {other} not supported"),
                };
                anyhow::ensure!(body[12] == 0, "interlaced PNG not supported");
            }
            b"IDAT" => data.extend_from_slice(body),
            b"IEND" => break,
            _ => {}
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    ZlibDecoder::new(&data[..]).read_to_end(&mut raw)?;
    let stride = width * channels;
    anyhow::ensure!(
        raw.len() == height * (stride + 1),
        "pixel data of the wrong size"
    );
    let mut pixels = vec![0u8; height * stride];
    for y in 0..height {
        let filter = raw[y * (stride + 1)];
        let line = &raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)];
        for i in 0..stride {
            let a = if i >= channels {
                pixels[y * stride + i - channels]
            } else {
                0
            };
            let b = if y > 0 {
                pixels[(y - 1) * stride + i]
            } else {
                0
            };
            let c = if y > 0 && i >= channels {
                pixels[(y - 1) * stride + i - channels]
            } else {
                0
            };
            let predicted = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                4 => paeth(a, b, c),
                other => anyhow::bail!("unknown filter {other}"),
            };
            pixels[y * stride + i] = line[i].wrapping_add(predicted);
        }
    }
    let rgba = if channels == 4 {
        pixels
    } else {
        pixels
            .chunks(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect()
    };
    Ok(Image {
        width,
        height,
        rgba,
    })
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let (a16, b16, c16) = (i16::from(a), i16::from(b), i16::from(c));
    let p = a16 + b16 - c16;
    let (pa, pb, pc) = ((p - a16).abs(), (p - b16).abs(), (p - c16).abs());
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}
