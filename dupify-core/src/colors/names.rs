//! Colour names and fashion colour families.
//!
//! **Names** come from the CSS Color Module Level 4 named colours (the X11 set adopted by CSS:
//! <https://www.w3.org/TR/css-color-4/#named-colors>), 148 keywords. Keywords that are aliases
//! of the same sRGB value (`aqua`/`cyan`, `fuchsia`/`magenta`, `gray`/`grey` spellings) are
//! listed once, under the alphabetically first keyword, leaving 139 distinct colours. The
//! nearest name is the one with the smallest CIEDE2000 distance.
//!
//! **Families** are decided from CIELAB lightness L\*, chroma C\* and hue angle h (degrees),
//! in this order (the first rule that matches wins):
//!
//! | family | rule |
//! |---|---|
//! | navy | L\* < 25, C\* ≥ 4.5 and 220 ≤ h < 320 (dark navy, which a photo renders at a chroma black rarely reaches, always bluish) |
//! | black / grey / white | C\* < 8: L\* < 22 black, L\* ≥ 70 white, otherwise grey |
//! | black | L\* < 16 and C\* < 20 (near-black with a faint tint) |
//! | green | 80 ≤ h < 110, L\* < 55 and 8 ≤ C\* < 30 (olive, khaki, sage: shoppers file them under green, not brown) |
//! | gold/metallic | 75 ≤ h < 95, 45 ≤ C\* ≤ 80, 45 ≤ L\* ≤ 80 (gold/brass hues; a flat colour cannot show sheen, so silver reads as grey) |
//! | beige | 50 ≤ h < 110, L\* ≥ 65, C\* < 35 |
//! | brown | 45 ≤ h < 110 and (L\* < 55 and C\* < 70, or L\* < 65 and C\* < 35) |
//! | pink | h ≥ 345 or h < 25, and L\* ≥ 55 |
//! | red | h ≥ 345 or h < 50 (the darker part of the pink range, and 25 ≤ h < 50) |
//! | orange | 50 ≤ h < 75 |
//! | yellow | 75 ≤ h < 100, or 100 ≤ h < 110 with L\* ≥ 65 |
//! | green | 100 ≤ h < 190 (olive tones included) |
//! | navy | 190 ≤ h < 312 and L\* < 25 |
//! | blue | 190 ≤ h < 312 |
//! | purple | 312 ≤ h < 345 |
//!
//! Hue angles of reference colours, for orientation: sRGB red 40°, orange 73°, yellow 103°,
//! green 136°, cyan 196°, blue 306°, magenta 328°, hot pink 351°. `multicolour` is never the
//! family of one colour: it is the product's family when no single family covers half of it.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::lab::{delta_e2000, lab_to_lch, srgb_to_lab};

/// A fashion colour family (what a shopper would filter by).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ColorFamily {
    Black,
    White,
    Grey,
    Beige,
    Brown,
    Red,
    Pink,
    Orange,
    Yellow,
    Green,
    Blue,
    Navy,
    Purple,
    /// Gold, brass and other metallic-looking warm yellows.
    GoldMetallic,
    /// No single family covers half of the product (prints, stripes, colour blocks).
    Multicolour,
}

impl ColorFamily {
    /// The family's display name, e.g. `"gold/metallic"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ColorFamily::Black => "black",
            ColorFamily::White => "white",
            ColorFamily::Grey => "grey",
            ColorFamily::Beige => "beige",
            ColorFamily::Brown => "brown",
            ColorFamily::Red => "red",
            ColorFamily::Pink => "pink",
            ColorFamily::Orange => "orange",
            ColorFamily::Yellow => "yellow",
            ColorFamily::Green => "green",
            ColorFamily::Blue => "blue",
            ColorFamily::Navy => "navy",
            ColorFamily::Purple => "purple",
            ColorFamily::GoldMetallic => "gold/metallic",
            ColorFamily::Multicolour => "multicolour",
        }
    }
}

impl std::fmt::Display for ColorFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Below this chroma (and outside the navy rule) a colour is black, grey or white.
pub(crate) const NEUTRAL_CHROMA: f32 = 8.0;

/// The family of one CIELAB colour (rules in the module docs).
pub fn color_family(lab: [f32; 3]) -> ColorFamily {
    use ColorFamily::*;
    let [l, c, h] = lab_to_lch(lab);
    // Dark navy photographs at a chroma a flat black rarely reaches, always on the blue side.
    if l < 25.0 && c >= 4.5 && (220.0..320.0).contains(&h) {
        return Navy;
    }
    if c < NEUTRAL_CHROMA {
        return if l < 22.0 {
            Black
        } else if l >= 70.0 {
            White
        } else {
            Grey
        };
    }
    if l < 16.0 && c < 20.0 {
        return Black;
    }
    // Olive and khaki sit between brown and green in hue; the label convention (and the
    // shop filters) call them green.
    if (80.0..110.0).contains(&h) && l < 55.0 && (8.0..30.0).contains(&c) {
        return Green;
    }
    if (75.0..95.0).contains(&h) && (45.0..=80.0).contains(&c) && (45.0..=80.0).contains(&l) {
        return GoldMetallic;
    }
    if (50.0..110.0).contains(&h) && l >= 65.0 && c < 35.0 {
        return Beige;
    }
    if (45.0..110.0).contains(&h) && ((l < 55.0 && c < 70.0) || (l < 65.0 && c < 35.0)) {
        return Brown;
    }
    if !(25.0..345.0).contains(&h) {
        return if l >= 55.0 { Pink } else { Red };
    }
    match h {
        h if h < 50.0 => Red,
        h if h < 75.0 => Orange,
        h if h < 100.0 => Yellow,
        h if h < 110.0 && l >= 65.0 => Yellow,
        h if h < 190.0 => Green,
        h if h < 312.0 => {
            if l < 25.0 {
                Navy
            } else {
                Blue
            }
        }
        _ => Purple,
    }
}

/// The palette: CSS named colours, aliases removed (see the module docs).
const CSS_COLORS: [(&str, [u8; 3]); 139] = [
    ("aliceblue", [240, 248, 255]),
    ("antiquewhite", [250, 235, 215]),
    ("aqua", [0, 255, 255]),
    ("aquamarine", [127, 255, 212]),
    ("azure", [240, 255, 255]),
    ("beige", [245, 245, 220]),
    ("bisque", [255, 228, 196]),
    ("black", [0, 0, 0]),
    ("blanchedalmond", [255, 235, 205]),
    ("blue", [0, 0, 255]),
    ("blueviolet", [138, 43, 226]),
    ("brown", [165, 42, 42]),
    ("burlywood", [222, 184, 135]),
    ("cadetblue", [95, 158, 160]),
    ("chartreuse", [127, 255, 0]),
    ("chocolate", [210, 105, 30]),
    ("coral", [255, 127, 80]),
    ("cornflowerblue", [100, 149, 237]),
    ("cornsilk", [255, 248, 220]),
    ("crimson", [220, 20, 60]),
    ("darkblue", [0, 0, 139]),
    ("darkcyan", [0, 139, 139]),
    ("darkgoldenrod", [184, 134, 11]),
    ("darkgray", [169, 169, 169]),
    ("darkgreen", [0, 100, 0]),
    ("darkkhaki", [189, 183, 107]),
    ("darkmagenta", [139, 0, 139]),
    ("darkolivegreen", [85, 107, 47]),
    ("darkorange", [255, 140, 0]),
    ("darkorchid", [153, 50, 204]),
    ("darkred", [139, 0, 0]),
    ("darksalmon", [233, 150, 122]),
    ("darkseagreen", [143, 188, 143]),
    ("darkslateblue", [72, 61, 139]),
    ("darkslategray", [47, 79, 79]),
    ("darkturquoise", [0, 206, 209]),
    ("darkviolet", [148, 0, 211]),
    ("deeppink", [255, 20, 147]),
    ("deepskyblue", [0, 191, 255]),
    ("dimgray", [105, 105, 105]),
    ("dodgerblue", [30, 144, 255]),
    ("firebrick", [178, 34, 34]),
    ("floralwhite", [255, 250, 240]),
    ("forestgreen", [34, 139, 34]),
    ("fuchsia", [255, 0, 255]),
    ("gainsboro", [220, 220, 220]),
    ("ghostwhite", [248, 248, 255]),
    ("gold", [255, 215, 0]),
    ("goldenrod", [218, 165, 32]),
    ("gray", [128, 128, 128]),
    ("green", [0, 128, 0]),
    ("greenyellow", [173, 255, 47]),
    ("honeydew", [240, 255, 240]),
    ("hotpink", [255, 105, 180]),
    ("indianred", [205, 92, 92]),
    ("indigo", [75, 0, 130]),
    ("ivory", [255, 255, 240]),
    ("khaki", [240, 230, 140]),
    ("lavender", [230, 230, 250]),
    ("lavenderblush", [255, 240, 245]),
    ("lawngreen", [124, 252, 0]),
    ("lemonchiffon", [255, 250, 205]),
    ("lightblue", [173, 216, 230]),
    ("lightcoral", [240, 128, 128]),
    ("lightcyan", [224, 255, 255]),
    ("lightgoldenrodyellow", [250, 250, 210]),
    ("lightgray", [211, 211, 211]),
    ("lightgreen", [144, 238, 144]),
    ("lightpink", [255, 182, 193]),
    ("lightsalmon", [255, 160, 122]),
    ("lightseagreen", [32, 178, 170]),
    ("lightskyblue", [135, 206, 250]),
    ("lightslategray", [119, 136, 153]),
    ("lightsteelblue", [176, 196, 222]),
    ("lightyellow", [255, 255, 224]),
    ("lime", [0, 255, 0]),
    ("limegreen", [50, 205, 50]),
    ("linen", [250, 240, 230]),
    ("maroon", [128, 0, 0]),
    ("mediumaquamarine", [102, 205, 170]),
    ("mediumblue", [0, 0, 205]),
    ("mediumorchid", [186, 85, 211]),
    ("mediumpurple", [147, 112, 219]),
    ("mediumseagreen", [60, 179, 113]),
    ("mediumslateblue", [123, 104, 238]),
    ("mediumspringgreen", [0, 250, 154]),
    ("mediumturquoise", [72, 209, 204]),
    ("mediumvioletred", [199, 21, 133]),
    ("midnightblue", [25, 25, 112]),
    ("mintcream", [245, 255, 250]),
    ("mistyrose", [255, 228, 225]),
    ("moccasin", [255, 228, 181]),
    ("navajowhite", [255, 222, 173]),
    ("navy", [0, 0, 128]),
    ("oldlace", [253, 245, 230]),
    ("olive", [128, 128, 0]),
    ("olivedrab", [107, 142, 35]),
    ("orange", [255, 165, 0]),
    ("orangered", [255, 69, 0]),
    ("orchid", [218, 112, 214]),
    ("palegoldenrod", [238, 232, 170]),
    ("palegreen", [152, 251, 152]),
    ("paleturquoise", [175, 238, 238]),
    ("palevioletred", [219, 112, 147]),
    ("papayawhip", [255, 239, 213]),
    ("peachpuff", [255, 218, 185]),
    ("peru", [205, 133, 63]),
    ("pink", [255, 192, 203]),
    ("plum", [221, 160, 221]),
    ("powderblue", [176, 224, 230]),
    ("purple", [128, 0, 128]),
    ("rebeccapurple", [102, 51, 153]),
    ("red", [255, 0, 0]),
    ("rosybrown", [188, 143, 143]),
    ("royalblue", [65, 105, 225]),
    ("saddlebrown", [139, 69, 19]),
    ("salmon", [250, 128, 114]),
    ("sandybrown", [244, 164, 96]),
    ("seagreen", [46, 139, 87]),
    ("seashell", [255, 245, 238]),
    ("sienna", [160, 82, 45]),
    ("silver", [192, 192, 192]),
    ("skyblue", [135, 206, 235]),
    ("slateblue", [106, 90, 205]),
    ("slategray", [112, 128, 144]),
    ("snow", [255, 250, 250]),
    ("springgreen", [0, 255, 127]),
    ("steelblue", [70, 130, 180]),
    ("tan", [210, 180, 140]),
    ("teal", [0, 128, 128]),
    ("thistle", [216, 191, 216]),
    ("tomato", [255, 99, 71]),
    ("turquoise", [64, 224, 208]),
    ("violet", [238, 130, 238]),
    ("wheat", [245, 222, 179]),
    ("white", [255, 255, 255]),
    ("whitesmoke", [245, 245, 245]),
    ("yellow", [255, 255, 0]),
    ("yellowgreen", [154, 205, 50]),
];

fn palette_lab() -> &'static [[f32; 3]] {
    static T: OnceLock<Vec<[f32; 3]>> = OnceLock::new();
    T.get_or_init(|| {
        CSS_COLORS
            .iter()
            .map(|(_, rgb)| srgb_to_lab(*rgb))
            .collect()
    })
}

/// The named colours of the palette, `(css keyword, sRGB)`.
pub fn named_colors() -> &'static [(&'static str, [u8; 3])] {
    &CSS_COLORS
}

/// The nearest CSS named colour to a CIELAB colour and its CIEDE2000 distance. Ties (equal
/// distance) go to the alphabetically first name.
pub fn nearest_named_color(lab: [f32; 3]) -> (&'static str, f32) {
    let mut best = (CSS_COLORS[0].0, f32::INFINITY);
    for ((name, _), p) in CSS_COLORS.iter().zip(palette_lab()) {
        let d = delta_e2000(lab, *p);
        if d < best.1 {
            best = (name, d);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use ColorFamily::*;

    #[test]
    fn palette_is_sorted_unique_and_contains_css_values() {
        for pair in CSS_COLORS.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} / {}", pair[0].0, pair[1].0);
        }
        let mut rgbs: Vec<[u8; 3]> = CSS_COLORS.iter().map(|c| c.1).collect();
        rgbs.sort();
        rgbs.dedup();
        assert_eq!(rgbs.len(), CSS_COLORS.len());
        // Values from the CSS Color 4 specification.
        let get = |n: &str| CSS_COLORS.iter().find(|c| c.0 == n).map(|c| c.1);
        assert_eq!(get("tomato"), Some([255, 99, 71]));
        assert_eq!(get("rebeccapurple"), Some([102, 51, 153]));
        assert_eq!(get("navy"), Some([0, 0, 128]));
        assert_eq!(get("cyan"), None, "alias of aqua");
    }

    #[test]
    fn exact_css_colours_name_themselves() {
        for (rgb, name) in [
            ([255, 99, 71], "tomato"),
            ([0, 0, 128], "navy"),
            ([245, 245, 220], "beige"),
            ([0, 255, 255], "aqua"),
        ] {
            let (n, d) = nearest_named_color(srgb_to_lab(rgb));
            assert_eq!((n, d), (name, 0.0));
        }
        let (n, d) = nearest_named_color(srgb_to_lab([250, 0, 2]));
        assert_eq!(n, "red");
        assert!(d > 0.0 && d < 3.0);
    }

    #[test]
    fn families_of_unambiguous_colours() {
        let cases: [([u8; 3], ColorFamily); 23] = [
            ([0, 0, 0], Black),
            ([20, 20, 22], Black),
            ([255, 255, 255], White),
            ([128, 128, 128], Grey),
            ([150, 150, 150], Grey),
            // Shaded white fabric in a phone photo rarely reaches L* 88.
            ([200, 200, 200], White),
            ([245, 245, 220], Beige),
            ([210, 180, 140], Beige),
            ([139, 69, 19], Brown),
            ([80, 50, 30], Brown),
            ([200, 16, 46], Red),
            ([128, 0, 32], Red),
            ([255, 192, 203], Pink),
            ([255, 105, 180], Pink),
            ([255, 140, 0], Orange),
            ([255, 230, 0], Yellow),
            ([218, 165, 32], GoldMetallic),
            ([0, 128, 0], Green),
            ([107, 142, 35], Green),
            ([30, 100, 220], Blue),
            ([0, 0, 128], Navy),
            ([25, 25, 112], Navy),
            ([128, 0, 128], Purple),
        ];
        for (rgb, fam) in cases {
            assert_eq!(color_family(srgb_to_lab(rgb)), fam, "{rgb:?}");
        }
    }

    /// CIELAB from lightness, chroma and hue angle (degrees).
    fn lab(l: f32, c: f32, h: f32) -> [f32; 3] {
        let r = h.to_radians();
        [l, c * r.cos(), c * r.sin()]
    }

    /// Photographed darks: navy keeps a faint blue chroma that black does not.
    #[test]
    fn dark_navy_and_black_in_photos() {
        assert_eq!(color_family(lab(12.0, 5.0, 290.0)), Navy);
        assert_eq!(color_family(lab(20.0, 4.7, 260.0)), Navy);
        assert_eq!(color_family(lab(12.0, 3.0, 290.0)), Black);
        assert_eq!(color_family(lab(12.0, 5.0, 30.0)), Black);
        assert_eq!(color_family(lab(27.0, 5.0, 290.0)), Grey);
    }

    /// Olive and khaki (yellowish hue, dark, muted) are green; tan at the same lightness is
    /// brown, and mustard (high chroma) is not olive.
    #[test]
    fn olive_is_green_tan_is_brown() {
        assert_eq!(color_family(lab(44.0, 16.0, 85.0)), Green);
        assert_eq!(color_family(lab(43.0, 9.0, 95.0)), Green);
        assert_eq!(color_family(lab(44.0, 16.0, 65.0)), Brown);
        assert_ne!(color_family(lab(40.0, 36.0, 82.0)), Green);
    }

    #[test]
    fn family_serialises_snake_case() {
        assert_eq!(
            serde_json::to_string(&GoldMetallic).unwrap(),
            "\"gold_metallic\""
        );
        assert_eq!(Multicolour.to_string(), "multicolour");
    }
}
