//! The attribute taxonomy: which attributes exist, their labels, the prompts that describe
//! each label to CLIP, and which attributes apply to which product categories.
//!
//! It is a static table (const arrays) so that it is reviewable in one place, costs nothing
//! at run time, and hashes to a stable [`prompt_set_hash`] that ties cached zero-shot heads
//! to the exact prompts they were built from: editing a label, a phrase or a template here
//! changes the hash and every cached head is rebuilt on next load.
//!
//! # Shape of the table
//!
//! * [`CATEGORIES`]: 42 product categories (fashion and home), each in one [`CategoryGroup`].
//!   It contains the ten classes of the `clothing-small` data set (`dress`, `hat`,
//!   `longsleeve`, `outwear`, `pants`, `shirt`, `shoes`, `shorts`, `skirt`, `t-shirt`) under
//!   their data-set names, so a head trained on that data set and the zero-shot category head
//!   speak the same label vocabulary.
//! * [`ATTRIBUTES`]: one [`AttributeDef`] per [`Attribute`], with labels (the stable API
//!   string), a phrase per label (what CLIP reads), several prompt templates (prompt
//!   ensembling, as in CLIP §3.1.4) and the category groups the attribute applies to.
//!
//! # Applicability
//!
//! An attribute is reported for a product only if it applies to the product's category group
//! ([`applies`]): no sleeve length for shoes, no neckline for trousers, no fit for a lamp.
//! The table (✓ = reported):
//!
//! | attribute      | tops | bottoms | dresses | outerwear | footwear | bags | accessories | home |
//! |----------------|------|---------|---------|-----------|----------|------|-------------|------|
//! | category       | ✓    | ✓       | ✓       | ✓         | ✓        | ✓    | ✓           | ✓    |
//! | pattern        | ✓    | ✓       | ✓       | ✓         | ✓        | ✓    | ✓           | ✓    |
//! | colour family  | ✓    | ✓       | ✓       | ✓         | ✓        | ✓    | ✓           | ✓    |
//! | sleeve length  | ✓    |         | ✓       | ✓         |          |      |             |      |
//! | neckline       | ✓    |         | ✓       |           |          |      |             |      |
//! | length         | ✓    | ✓       | ✓       | ✓         |          |      |             |      |
//! | fit            | ✓    | ✓       | ✓       | ✓         |          |      |             |      |
//! | material       | ✓    | ✓       | ✓       | ✓         | ✓        | ✓    | ✓           | ✓    |
//! | style          | ✓    | ✓       | ✓       | ✓         | ✓        | ✓    | ✓           | ✓    |
//! | occasion       | ✓    | ✓       | ✓       | ✓         | ✓        | ✓    | ✓           |      |

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Coarse product family; decides which attributes are meaningful for a category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CategoryGroup {
    /// Upper-body garments worn under outerwear (t-shirts, shirts, sweaters…).
    Tops,
    /// Lower-body garments (trousers, shorts, skirts…).
    Bottoms,
    /// One-piece garments (dresses, jumpsuits).
    Dresses,
    /// Layers worn over other clothes (coats, jackets, blazers, cardigans).
    Outerwear,
    /// Shoes of any kind.
    Footwear,
    /// Handbags, backpacks, totes.
    Bags,
    /// Hats, scarves, belts, eyewear, watches, jewellery.
    Accessories,
    /// Furniture, lighting, textiles and decor for the home.
    Home,
}

impl CategoryGroup {
    /// Every group, in table order.
    pub const ALL: [CategoryGroup; 8] = [
        CategoryGroup::Tops,
        CategoryGroup::Bottoms,
        CategoryGroup::Dresses,
        CategoryGroup::Outerwear,
        CategoryGroup::Footwear,
        CategoryGroup::Bags,
        CategoryGroup::Accessories,
        CategoryGroup::Home,
    ];
}

/// One product category: its stable label, what CLIP reads for it, and its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CategoryDef {
    /// Stable label returned by the API (the `clothing-small` folder name where one exists).
    pub label: &'static str,
    /// Noun phrase used in prompts ("a photo of {phrase}").
    pub phrase: &'static str,
    /// The group that decides attribute applicability.
    pub group: CategoryGroup,
}

const fn cat(label: &'static str, phrase: &'static str, group: CategoryGroup) -> CategoryDef {
    CategoryDef {
        label,
        phrase,
        group,
    }
}

use CategoryGroup::{Accessories, Bags, Bottoms, Dresses, Footwear, Home, Outerwear, Tops};

/// All product categories. The first ten are the `clothing-small` classes.
pub const CATEGORIES: &[CategoryDef] = &[
    // The ten clothing-small classes, under their data-set names.
    cat("dress", "a dress", Dresses),
    cat("hat", "a hat", Accessories),
    cat("longsleeve", "a long-sleeved top", Tops),
    cat("outwear", "a jacket or coat", Outerwear),
    cat("pants", "a pair of pants", Bottoms),
    cat("shirt", "a button-up shirt", Tops),
    cat("shoes", "a pair of shoes", Footwear),
    cat("shorts", "a pair of shorts", Bottoms),
    cat("skirt", "a skirt", Bottoms),
    cat("t-shirt", "a t-shirt", Tops),
    // Further tops.
    cat("blouse", "a blouse", Tops),
    cat("sweater", "a knitted sweater", Tops),
    cat("hoodie", "a hoodie", Tops),
    cat("tank-top", "a tank top", Tops),
    cat("polo", "a polo shirt", Tops),
    // Further bottoms.
    cat("jeans", "a pair of jeans", Bottoms),
    cat("leggings", "a pair of leggings", Bottoms),
    // One-pieces and outerwear.
    cat("jumpsuit", "a jumpsuit", Dresses),
    cat("blazer", "a blazer", Outerwear),
    cat("cardigan", "a cardigan", Outerwear),
    // Footwear.
    cat("sneakers", "a pair of sneakers", Footwear),
    cat("boots", "a pair of boots", Footwear),
    cat("sandals", "a pair of sandals", Footwear),
    cat("heels", "a pair of high heels", Footwear),
    // Bags.
    cat("handbag", "a handbag", Bags),
    cat("backpack", "a backpack", Bags),
    cat("tote-bag", "a tote bag", Bags),
    // Accessories.
    cat("scarf", "a scarf", Accessories),
    cat("belt", "a belt", Accessories),
    cat("sunglasses", "a pair of sunglasses", Accessories),
    cat("watch", "a wristwatch", Accessories),
    cat("jewelry", "a piece of jewelry", Accessories),
    // Home.
    cat("sofa", "a sofa", Home),
    cat("armchair", "an armchair", Home),
    cat("table", "a table", Home),
    cat("lamp", "a lamp", Home),
    cat("rug", "a rug", Home),
    cat("cushion", "a cushion", Home),
    cat("bedding", "a set of bedding", Home),
    cat("curtains", "a pair of curtains", Home),
    cat("vase", "a vase", Home),
    cat("mirror", "a wall mirror", Home),
];

/// The attributes Dupify reports. `Category` is predicted first; it decides which of the
/// others apply (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribute {
    /// Product category ([`CATEGORIES`]).
    Category,
    /// Surface pattern (solid, striped, floral…).
    Pattern,
    /// Dominant colour family, coarse on purpose (the colours stage gives exact palettes).
    ColorFamily,
    /// Sleeve length of a garment.
    SleeveLength,
    /// Neckline of a top or dress.
    Neckline,
    /// Garment length (cropped … floor-length).
    Length,
    /// Cut relative to the body.
    Fit,
    /// Main material.
    Material,
    /// Overall style.
    Style,
    /// Occasion the product suits.
    Occasion,
}

impl Attribute {
    /// Every attribute, category first.
    pub const ALL: [Attribute; 10] = [
        Attribute::Category,
        Attribute::Pattern,
        Attribute::ColorFamily,
        Attribute::SleeveLength,
        Attribute::Neckline,
        Attribute::Length,
        Attribute::Fit,
        Attribute::Material,
        Attribute::Style,
        Attribute::Occasion,
    ];

    /// Stable snake_case name (used in results, tensor names and file metadata).
    pub fn name(self) -> &'static str {
        match self {
            Attribute::Category => "category",
            Attribute::Pattern => "pattern",
            Attribute::ColorFamily => "color_family",
            Attribute::SleeveLength => "sleeve_length",
            Attribute::Neckline => "neckline",
            Attribute::Length => "length",
            Attribute::Fit => "fit",
            Attribute::Material => "material",
            Attribute::Style => "style",
            Attribute::Occasion => "occasion",
        }
    }

    /// Parses [`Attribute::name`] back; `None` for unknown names.
    pub fn from_name(name: &str) -> Option<Attribute> {
        Attribute::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The table entry for this attribute.
    pub fn def(self) -> &'static AttributeDef {
        // ATTRIBUTES is in `Attribute::ALL` order; a unit test checks it.
        &ATTRIBUTES[self as usize]
    }
}

/// One label of an attribute: the stable API string and the phrase CLIP reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelDef {
    /// Stable label returned by the API.
    pub label: &'static str,
    /// Text substituted for `{}` in the attribute's templates.
    pub phrase: &'static str,
}

const fn l(label: &'static str, phrase: &'static str) -> LabelDef {
    LabelDef { label, phrase }
}

/// An attribute's labels, prompt templates and applicability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeDef {
    /// Which attribute this row describes.
    pub attribute: Attribute,
    /// Labels with their prompt phrases. For [`Attribute::Category`] this is empty and
    /// [`CATEGORIES`] is used instead (see [`AttributeDef::labels`]).
    pub label_defs: &'static [LabelDef],
    /// Prompt templates; `{}` is replaced by the label phrase. Several templates per attribute
    /// are averaged (prompt ensembling), which the CLIP paper reports is worth several points
    /// of zero-shot accuracy over a single template.
    pub templates: &'static [&'static str],
    /// Groups for which the attribute is reported.
    pub groups: &'static [CategoryGroup],
}

impl AttributeDef {
    /// `(label, phrase)` pairs in head order.
    pub fn labels(&self) -> Vec<(&'static str, &'static str)> {
        if self.attribute == Attribute::Category {
            CATEGORIES.iter().map(|c| (c.label, c.phrase)).collect()
        } else {
            self.label_defs
                .iter()
                .map(|l| (l.label, l.phrase))
                .collect()
        }
    }

    /// Every prompt for label `phrase`, one per template.
    pub fn prompts_for(&self, phrase: &str) -> Vec<String> {
        self.templates
            .iter()
            .map(|t| t.replacen("{}", phrase, 1))
            .collect()
    }
}

const ALL_GROUPS: &[CategoryGroup] = &CategoryGroup::ALL;
const GARMENTS: &[CategoryGroup] = &[Tops, Bottoms, Dresses, Outerwear];
const NOT_HOME: &[CategoryGroup] = &[
    Tops,
    Bottoms,
    Dresses,
    Outerwear,
    Footwear,
    Bags,
    Accessories,
];

/// The attribute table, in [`Attribute::ALL`] order.
pub const ATTRIBUTES: &[AttributeDef] = &[
    AttributeDef {
        attribute: Attribute::Category,
        label_defs: &[],
        templates: &[
            "a photo of {}.",
            "a product photo of {}.",
            "an online shop photo of {}.",
            "a close-up photo of {}.",
        ],
        groups: ALL_GROUPS,
    },
    AttributeDef {
        attribute: Attribute::Pattern,
        label_defs: &[
            l("solid", "a solid, plain"),
            l("striped", "a striped"),
            l("checked", "a checked, plaid"),
            l("floral", "a floral"),
            l("polka-dot", "a polka-dot"),
            l("animal-print", "an animal-print"),
            l("graphic", "a graphic-print"),
            l("geometric", "a geometric-pattern"),
            l("camouflage", "a camouflage"),
            l("abstract", "an abstract-pattern"),
        ],
        templates: &[
            "a photo of {} product.",
            "a product photo of {} item.",
            "{} fabric pattern.",
        ],
        groups: ALL_GROUPS,
    },
    AttributeDef {
        attribute: Attribute::ColorFamily,
        label_defs: &[
            l("black", "black"),
            l("white", "white"),
            l("grey", "grey"),
            l("beige", "beige"),
            l("brown", "brown"),
            l("red", "red"),
            l("orange", "orange"),
            l("yellow", "yellow"),
            l("green", "green"),
            l("blue", "blue"),
            l("navy", "navy blue"),
            l("purple", "purple"),
            l("pink", "pink"),
            l("metallic", "metallic gold or silver"),
            l("multicolor", "multicoloured"),
        ],
        templates: &[
            "a photo of a {} product.",
            "a product photo of something {}.",
            "a {} item.",
        ],
        groups: ALL_GROUPS,
    },
    AttributeDef {
        attribute: Attribute::SleeveLength,
        label_defs: &[
            l("sleeveless", "no sleeves"),
            l("short", "short sleeves"),
            l("elbow", "elbow-length sleeves"),
            l("three-quarter", "three-quarter sleeves"),
            l("long", "long sleeves"),
        ],
        templates: &[
            "a photo of a garment with {}.",
            "a product photo of clothing with {}.",
            "a top with {}.",
        ],
        groups: &[Tops, Dresses, Outerwear],
    },
    AttributeDef {
        attribute: Attribute::Neckline,
        label_defs: &[
            l("crew", "a crew neck"),
            l("v-neck", "a v-neck"),
            l("scoop", "a scoop neck"),
            l("collared", "a shirt collar"),
            l("turtleneck", "a turtleneck"),
            l("off-shoulder", "an off-the-shoulder neckline"),
            l("halter", "a halter neck"),
            l("square", "a square neckline"),
            l("hooded", "a hood"),
        ],
        templates: &[
            "a photo of a garment with {}.",
            "a product photo of a top with {}.",
            "clothing with {}.",
        ],
        groups: &[Tops, Dresses],
    },
    AttributeDef {
        attribute: Attribute::Length,
        label_defs: &[
            l("cropped", "cropped"),
            l("hip", "hip-length"),
            l("mini", "mini, above the knee"),
            l("knee", "knee-length"),
            l("midi", "midi, below the knee"),
            l("ankle", "ankle-length"),
            l("floor", "floor-length"),
        ],
        templates: &[
            "a photo of a {} garment.",
            "a product photo of {} clothing.",
            "a {} piece of clothing.",
        ],
        groups: GARMENTS,
    },
    AttributeDef {
        attribute: Attribute::Fit,
        label_defs: &[
            l("slim", "slim-fit"),
            l("regular", "regular-fit"),
            l("relaxed", "relaxed, loose-fit"),
            l("oversized", "oversized"),
            l("bodycon", "tight, body-hugging"),
            l("wide", "wide-leg, flared"),
        ],
        templates: &[
            "a photo of a {} garment.",
            "a product photo of {} clothing.",
            "{} clothes.",
        ],
        groups: GARMENTS,
    },
    AttributeDef {
        attribute: Attribute::Material,
        label_defs: &[
            l("cotton", "cotton"),
            l("denim", "denim"),
            l("wool", "wool or knit"),
            l("silk", "silk or satin"),
            l("linen", "linen"),
            l("leather", "leather"),
            l("suede", "suede"),
            l("synthetic", "polyester or nylon"),
            l("lace", "lace"),
            l("velvet", "velvet"),
            l("wood", "wood"),
            l("metal", "metal"),
            l("glass", "glass"),
            l("ceramic", "ceramic"),
            l("plastic", "plastic"),
            l("rattan", "rattan or wicker"),
        ],
        templates: &[
            "a photo of a product made of {}.",
            "a close-up of {} material.",
            "an item made from {}.",
        ],
        groups: ALL_GROUPS,
    },
    AttributeDef {
        attribute: Attribute::Style,
        label_defs: &[
            l("casual", "casual"),
            l("formal", "formal, elegant"),
            l("sporty", "sporty, athletic"),
            l("bohemian", "bohemian"),
            l("vintage", "vintage, retro"),
            l("minimalist", "minimalist"),
            l("streetwear", "streetwear"),
            l("classic", "classic, timeless"),
            l("romantic", "romantic, feminine"),
            l("industrial", "industrial"),
            l("scandinavian", "scandinavian"),
        ],
        templates: &[
            "a photo of a {} style product.",
            "a product in a {} style.",
            "{} design.",
        ],
        groups: ALL_GROUPS,
    },
    AttributeDef {
        attribute: Attribute::Occasion,
        label_defs: &[
            l("everyday", "everyday wear"),
            l("work", "the office"),
            l("party", "a party or night out"),
            l("wedding", "a wedding or formal event"),
            l("sport", "sport and the gym"),
            l("beach", "the beach or a holiday"),
            l("lounge", "lounging at home"),
            l("outdoor", "hiking and the outdoors"),
        ],
        templates: &[
            "a photo of a product for {}.",
            "something to wear for {}.",
            "an outfit for {}.",
        ],
        groups: NOT_HOME,
    },
];

/// Looks up a category by its label.
pub fn category(label: &str) -> Option<&'static CategoryDef> {
    CATEGORIES.iter().find(|c| c.label == label)
}

/// Whether `attribute` is reported for products of `group`.
pub fn applies(attribute: Attribute, group: CategoryGroup) -> bool {
    attribute.def().groups.contains(&group)
}

/// The attributes reported for `group`, in [`Attribute::ALL`] order (category included).
pub fn applicable_attributes(group: CategoryGroup) -> Vec<Attribute> {
    Attribute::ALL
        .into_iter()
        .filter(|&a| applies(a, group))
        .collect()
}

/// Version of the prompt-set hashing scheme; bump when the hashed byte layout changes.
const PROMPT_HASH_VERSION: &str = "dupify-prompts/1";

/// SHA-256 (hex) over every attribute's name, labels and expanded prompts, in table order.
///
/// A zero-shot head cache stores this next to the model hash: the cache is valid only for
/// the exact model *and* the exact prompts, so a library upgrade that edits the taxonomy
/// rebuilds the heads instead of silently reporting stale labels.
pub fn prompt_set_hash() -> String {
    let mut h = Sha256::new();
    h.update(PROMPT_HASH_VERSION.as_bytes());
    for def in ATTRIBUTES {
        h.update([0u8]);
        h.update(def.attribute.name().as_bytes());
        for (label, phrase) in def.labels() {
            h.update([1u8]);
            h.update(label.as_bytes());
            for p in def.prompts_for(phrase) {
                h.update([2u8]);
                h.update(p.as_bytes());
            }
        }
    }
    crate::input::hex(&h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn table_is_in_enum_order_and_well_formed() {
        assert_eq!(ATTRIBUTES.len(), Attribute::ALL.len());
        for (i, a) in Attribute::ALL.into_iter().enumerate() {
            assert_eq!(ATTRIBUTES[i].attribute, a, "row {i}");
            assert_eq!(Attribute::from_name(a.name()), Some(a));
            let def = a.def();
            let labels = def.labels();
            assert!(
                labels.len() >= 5,
                "{} has {} labels",
                a.name(),
                labels.len()
            );
            let unique: HashSet<_> = labels.iter().map(|(l, _)| *l).collect();
            assert_eq!(
                unique.len(),
                labels.len(),
                "duplicate label in {}",
                a.name()
            );
            assert!(def.templates.len() >= 3, "{} needs an ensemble", a.name());
            for t in def.templates {
                assert_eq!(t.matches("{}").count(), 1, "template `{t}`");
            }
            assert!(!def.groups.is_empty());
        }
    }

    #[test]
    fn categories_cover_clothing_small_and_are_unique() {
        assert!(CATEGORIES.len() >= 30, "{}", CATEGORIES.len());
        let labels: HashSet<_> = CATEGORIES.iter().map(|c| c.label).collect();
        assert_eq!(labels.len(), CATEGORIES.len());
        for name in [
            "dress",
            "hat",
            "longsleeve",
            "outwear",
            "pants",
            "shirt",
            "shoes",
            "shorts",
            "skirt",
            "t-shirt",
        ] {
            assert!(labels.contains(name), "missing {name}");
        }
        for g in CategoryGroup::ALL {
            assert!(CATEGORIES.iter().any(|c| c.group == g), "{g:?} empty");
        }
    }

    #[test]
    fn applicability_matches_the_documented_table() {
        // Rows: Attribute::ALL; columns: CategoryGroup::ALL (tops, bottoms, dresses,
        // outerwear, footwear, bags, accessories, home). Mirrors the module docs.
        let table: [[u8; 8]; 10] = [
            [1, 1, 1, 1, 1, 1, 1, 1], // category
            [1, 1, 1, 1, 1, 1, 1, 1], // pattern
            [1, 1, 1, 1, 1, 1, 1, 1], // colour family
            [1, 0, 1, 1, 0, 0, 0, 0], // sleeve length
            [1, 0, 1, 0, 0, 0, 0, 0], // neckline
            [1, 1, 1, 1, 0, 0, 0, 0], // length
            [1, 1, 1, 1, 0, 0, 0, 0], // fit
            [1, 1, 1, 1, 1, 1, 1, 1], // material
            [1, 1, 1, 1, 1, 1, 1, 1], // style
            [1, 1, 1, 1, 1, 1, 1, 0], // occasion
        ];
        for (r, a) in Attribute::ALL.into_iter().enumerate() {
            for (c, g) in CategoryGroup::ALL.into_iter().enumerate() {
                assert_eq!(applies(a, g), table[r][c] == 1, "{} for {g:?}", a.name());
            }
        }
        let shoes = category("shoes").unwrap().group;
        assert!(!applicable_attributes(shoes).contains(&Attribute::SleeveLength));
    }

    #[test]
    fn prompt_hash_is_stable_hex() {
        let a = prompt_set_hash();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a, prompt_set_hash());
    }
}
