//! Training and evaluating linear heads (behind the `train` cargo feature): full-batch
//! multinomial logistic regression with LibTorch, a stratified hold-out split, temperature
//! calibration and its expected calibration error. The runtime (loading a trained head and
//! predicting with it, [`super::LinearHead`]) needs none of this, so a host application does
//! not compile or expose it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, OptimizerConfig};

use super::linear::{validate_labels, LinearHead};
use super::{matvec, normalized};
use crate::error::{Error, Result};

/// Logistic-regression training options (documented defaults in [`Default`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Full-batch optimisation steps. Default 300: enough for unit-norm CLIP features, and
    /// full-batch (not minibatch) keeps training deterministic.
    pub epochs: usize,
    /// AdamW learning rate. Default 0.05 — weights on unit-norm inputs must grow to tens to
    /// give confident logits, which a smaller rate reaches too slowly.
    pub learning_rate: f64,
    /// Decoupled weight decay (AdamW). Default 1e-4: a light L2 prior against overfitting
    /// small labelled sets.
    pub weight_decay: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            epochs: 300,
            learning_rate: 0.05,
            weight_decay: 1e-4,
        }
    }
}

/// Trains a logistic-regression head with LibTorch (`nn::linear` + AdamW, cross-entropy,
/// full batch, zero-initialised so the result is deterministic) on CPU.
///
/// `embeddings[i]` is the image embedding of example `i` (normalised here), `labels[i]` an
/// index into `label_names`. `model_hash` is the content hash of the model that produced
/// the embeddings; the head is bound to it.
pub fn train_linear_head(
    attribute: &str,
    embeddings: &[Vec<f32>],
    labels: &[usize],
    label_names: &[String],
    model_hash: &str,
    opts: &TrainOptions,
) -> Result<LinearHead> {
    validate_labels(label_names)?;
    if embeddings.is_empty() {
        return Err(Error::invalid("embeddings", "no training examples"));
    }
    if labels.len() != embeddings.len() {
        return Err(Error::invalid(
            "labels",
            format!(
                "{} labels for {} embeddings",
                labels.len(),
                embeddings.len()
            ),
        ));
    }
    if let Some(&bad) = labels.iter().find(|&&l| l >= label_names.len()) {
        return Err(Error::invalid(
            "labels",
            format!("label index {bad} but only {} names", label_names.len()),
        ));
    }
    if opts.epochs == 0 {
        return Err(Error::invalid("epochs", "must be at least 1"));
    }
    if !(opts.learning_rate.is_finite() && opts.learning_rate > 0.0) {
        return Err(Error::invalid("learning_rate", "must be a positive number"));
    }
    if !(opts.weight_decay.is_finite() && opts.weight_decay >= 0.0) {
        return Err(Error::invalid("weight_decay", "must be a number ≥ 0"));
    }
    let dim = embeddings[0].len();
    if dim == 0 {
        return Err(Error::invalid("embeddings", "embeddings are empty vectors"));
    }
    let mut flat = Vec::with_capacity(embeddings.len() * dim);
    for (i, e) in embeddings.iter().enumerate() {
        flat.extend(normalized(e, dim, &format!("embeddings[{i}]"))?);
    }
    let n = embeddings.len() as i64;
    let k = label_names.len() as i64;

    let device = tch::Device::Cpu;
    let x = tch::Tensor::from_slice(&flat).reshape([n, dim as i64]);
    let y_idx: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    let y = tch::Tensor::from_slice(&y_idx);
    let vs = nn::VarStore::new(device);
    let cfg = nn::LinearConfig {
        ws_init: nn::Init::Const(0.0),
        bs_init: Some(nn::Init::Const(0.0)),
        bias: true,
    };
    let linear = nn::linear(vs.root() / "head", dim as i64, k, cfg);
    let mut opt = nn::AdamW {
        wd: opts.weight_decay,
        ..Default::default()
    }
    .build(&vs, opts.learning_rate)?;
    for _ in 0..opts.epochs {
        let loss = linear.forward(&x).cross_entropy_for_logits(&y);
        opt.backward_step(&loss);
    }
    let weight = Vec::<f32>::try_from(linear.ws.detach().flatten(0, -1))?;
    let bias = match &linear.bs {
        Some(b) => Vec::<f32>::try_from(b.detach())?,
        None => return Err(Error::Internal("linear layer has no bias".into())),
    };
    LinearHead::new(attribute, label_names.to_vec(), weight, bias, model_hash)
}

/// Deterministic stratified split: for every class, `round(fraction · count)` of its
/// examples (at least one when the class has two or more) go to the held-out set, chosen
/// by a seeded shuffle. Returns `(train_indices, holdout_indices)`, each sorted.
pub fn split_holdout(labels: &[usize], fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let fraction = if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mut by_class: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, &l) in labels.iter().enumerate() {
        by_class.entry(l).or_default().push(i);
    }
    let mut classes: Vec<_> = by_class.into_iter().collect();
    classes.sort_by_key(|(c, _)| *c);
    let mut rng = SplitMix64(seed);
    let (mut train, mut hold) = (Vec::new(), Vec::new());
    for (_, mut idx) in classes {
        // Fisher–Yates with SplitMix64: reproducible across platforms and library versions.
        for i in (1..idx.len()).rev() {
            let j = (rng.next() % (i as u64 + 1)) as usize;
            idx.swap(i, j);
        }
        let mut n_hold = (fraction * idx.len() as f64).round() as usize;
        if fraction > 0.0 && idx.len() >= 2 {
            n_hold = n_hold.clamp(1, idx.len() - 1);
        }
        hold.extend_from_slice(&idx[..n_hold]);
        train.extend_from_slice(&idx[n_hold..]);
    }
    train.sort_unstable();
    hold.sort_unstable();
    (train, hold)
}

struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Calibrates a head's probabilities by temperature scaling (Guo et al., "On Calibration of
/// Modern Neural Networks", 2017): finds the `T` in `softmax(logits / T)` that minimises the
/// negative log-likelihood on held-out `(embeddings, labels)` — data the head was not trained
/// on — and folds `1/T` into the weights and bias. The ranking of labels, and so accuracy, is
/// unchanged; a "0.9" then means right about 90% of the time on such data. Returns the
/// calibrated head and `T` (> 1: the head was over-confident).
pub fn calibrate_temperature(
    head: &LinearHead,
    embeddings: &[Vec<f32>],
    labels: &[usize],
) -> Result<(LinearHead, f64)> {
    if embeddings.is_empty() || labels.len() != embeddings.len() {
        return Err(Error::invalid(
            "labels",
            format!(
                "{} labels for {} embeddings (need at least one of each, as many)",
                labels.len(),
                embeddings.len()
            ),
        ));
    }
    let k = head.labels.len();
    if let Some(&bad) = labels.iter().find(|&&l| l >= k) {
        return Err(Error::invalid(
            "labels",
            format!("label index {bad} but the head has {k} labels"),
        ));
    }
    let logits: Vec<Vec<f64>> = embeddings
        .iter()
        .map(|e| {
            let e = normalized(e, head.dim, "embeddings")?;
            Ok(matvec(&head.weight, head.dim, &e)
                .into_iter()
                .zip(&head.bias)
                .map(|(z, &b)| z + f64::from(b))
                .collect())
        })
        .collect::<Result<_>>()?;
    let nll = |log_t: f64| -> f64 {
        let t = log_t.exp();
        logits
            .iter()
            .zip(labels)
            .map(|(z, &y)| {
                let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max) / t;
                let lse = z.iter().map(|&v| (v / t - max).exp()).sum::<f64>().ln() + max;
                lse - z[y] / t
            })
            .sum::<f64>()
            / logits.len() as f64
    };
    // Golden-section search on log T in [ln 0.01, ln 100]: the NLL is unimodal in T.
    let (mut a, mut b) = (0.01f64.ln(), 100f64.ln());
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut c, mut d) = (b - g * (b - a), a + g * (b - a));
    let (mut fc, mut fd) = (nll(c), nll(d));
    for _ in 0..80 {
        if fc < fd {
            b = d;
            d = c;
            fd = fc;
            c = b - g * (b - a);
            fc = nll(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + g * (b - a);
            fd = nll(d);
        }
    }
    let t = ((a + b) / 2.0).exp();
    let scale = |v: &[f32]| v.iter().map(|&x| (f64::from(x) / t) as f32).collect();
    let mut out = LinearHead::new(
        head.attribute.clone(),
        head.labels.clone(),
        scale(&head.weight),
        scale(&head.bias),
        head.model_hash.clone(),
    )?;
    out.origin = head.origin.clone();
    Ok((out, t))
}

/// Expected calibration error (10 equal-width confidence bins): the mean gap between a
/// head's top-1 confidence and its accuracy, weighted by how many predictions fall in each
/// bin. 0 is perfectly calibrated.
pub fn expected_calibration_error(
    head: &LinearHead,
    embeddings: &[Vec<f32>],
    labels: &[usize],
) -> Result<f64> {
    let mut bins = [(0usize, 0f64, 0usize); 10];
    for (e, &l) in embeddings.iter().zip(labels) {
        let p = head.predict(e)?;
        let conf = f64::from(p.probability);
        let i = ((conf * 10.0) as usize).min(9);
        bins[i].0 += 1;
        bins[i].1 += conf;
        bins[i].2 += usize::from(head.labels.get(l) == Some(&p.label));
    }
    let n = embeddings.len().max(1) as f64;
    Ok(bins
        .iter()
        .filter(|b| b.0 > 0)
        .map(|&(_, conf, correct)| (conf - correct as f64).abs() / n)
        .sum())
}

/// Accuracy on one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassAccuracy {
    /// Class label.
    pub label: String,
    /// Examples of this class predicted correctly.
    pub correct: usize,
    /// Examples of this class.
    pub total: usize,
    /// `correct / total` (0 when `total` is 0).
    pub accuracy: f32,
}

/// Accuracy of a head on a labelled set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Overall accuracy.
    pub accuracy: f32,
    /// One entry per head label, in head order.
    pub per_class: Vec<ClassAccuracy>,
}

/// Top-1 accuracy of `head` on `(embeddings, labels)`, overall and per class; `labels` index
/// the head's labels.
pub fn evaluate_linear_head(
    head: &LinearHead,
    embeddings: &[Vec<f32>],
    labels: &[usize],
) -> Result<Evaluation> {
    if labels.len() != embeddings.len() {
        return Err(Error::invalid(
            "labels",
            format!(
                "{} labels for {} embeddings",
                labels.len(),
                embeddings.len()
            ),
        ));
    }
    let k = head.labels.len();
    let (mut correct, mut total) = (vec![0usize; k], vec![0usize; k]);
    for (e, &l) in embeddings.iter().zip(labels) {
        if l >= k {
            return Err(Error::invalid(
                "labels",
                format!("label index {l} but the head has {k} labels"),
            ));
        }
        let p = head.predict(e)?;
        total[l] += 1;
        if p.label == head.labels[l] {
            correct[l] += 1;
        }
    }
    let all: usize = total.iter().sum();
    let ok: usize = correct.iter().sum();
    let ratio = |c: usize, t: usize| if t == 0 { 0.0 } else { c as f32 / t as f32 };
    Ok(Evaluation {
        accuracy: ratio(ok, all),
        per_class: head
            .labels
            .iter()
            .enumerate()
            .map(|(i, label)| ClassAccuracy {
                label: label.clone(),
                correct: correct[i],
                total: total[i],
                accuracy: ratio(correct[i], total[i]),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn temperature_scaling_tempers_an_overconfident_head() {
        // Two labels on 2-d unit vectors; the head is ~6x too sharp and 20% of held-out
        // labels disagree with it, so the best temperature is well above 1.
        let head = LinearHead::new(
            "category",
            vec!["a".into(), "b".into()],
            vec![10.0, 0.0, 0.0, 10.0],
            vec![0.0, 0.0],
            "m",
        )
        .unwrap();
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for i in 0..50 {
            xs.push(vec![1.0, 0.2]);
            ys.push(usize::from(i % 5 == 0));
        }
        let before = expected_calibration_error(&head, &xs, &ys).unwrap();
        let (cal, t) = calibrate_temperature(&head, &xs, &ys).unwrap();
        let after = expected_calibration_error(&cal, &xs, &ys).unwrap();
        assert!(t > 3.0, "temperature {t}");
        assert!(after < before / 4.0, "ECE {before} -> {after}");
        // Same ranking: the top label never changes.
        assert_eq!(
            cal.predict(&xs[0]).unwrap().label,
            head.predict(&xs[0]).unwrap().label
        );
        let p = cal.predict(&xs[0]).unwrap().probability;
        assert!((p - 0.8).abs() < 0.02, "calibrated confidence {p}");
    }

    use super::*;

    /// Gaussian-ish clusters around well-separated random class centres in 32-d.
    fn clusters(k: usize, per: usize, dim: usize, noise: f32) -> (Vec<Vec<f32>>, Vec<usize>) {
        let mut rng = SplitMix64(7);
        let mut unit = || (rng.next() >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0;
        let centres: Vec<Vec<f32>> = (0..k).map(|_| (0..dim).map(|_| unit()).collect()).collect();
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for (c, centre) in centres.iter().enumerate() {
            for _ in 0..per {
                xs.push(centre.iter().map(|&m| m + noise * unit()).collect());
                ys.push(c);
            }
        }
        (xs, ys)
    }

    #[test]
    fn trains_to_high_accuracy_on_separable_clusters() {
        let (xs, ys) = clusters(6, 40, 32, 0.35);
        let names: Vec<String> = (0..6).map(|i| format!("class{i}")).collect();
        let (tr, ho) = split_holdout(&ys, 0.25, 1);
        assert_eq!(tr.len() + ho.len(), xs.len());
        assert_eq!(ho.len(), 60, "10 of 40 per class held out");
        let pick = |idx: &[usize]| -> (Vec<Vec<f32>>, Vec<usize>) {
            (
                idx.iter().map(|&i| xs[i].clone()).collect(),
                idx.iter().map(|&i| ys[i]).collect(),
            )
        };
        let (trx, try_) = pick(&tr);
        let (hox, hoy) = pick(&ho);
        let head = train_linear_head(
            "pattern",
            &trx,
            &try_,
            &names,
            "m1",
            &TrainOptions::default(),
        )
        .unwrap();
        let ev = evaluate_linear_head(&head, &hox, &hoy).unwrap();
        assert!(ev.accuracy >= 0.95, "held-out accuracy {}", ev.accuracy);
        for c in &ev.per_class {
            assert_eq!(c.total, 10);
            assert!(c.accuracy >= 0.8, "{c:?}");
        }
        // Confident, not just right: mean top probability on held-out examples.
        let mean_top: f32 = hox
            .iter()
            .map(|e| head.predict(e).unwrap().probability)
            .sum::<f32>()
            / hox.len() as f32;
        assert!(mean_top > 0.7, "mean top probability {mean_top}");
    }

    #[test]
    fn split_is_stratified_disjoint_and_seeded() {
        let ys: Vec<usize> = (0..30).map(|i| i % 3).collect();
        let (a_tr, a_ho) = split_holdout(&ys, 0.2, 42);
        assert_eq!(split_holdout(&ys, 0.2, 42), (a_tr.clone(), a_ho.clone()));
        assert_ne!(split_holdout(&ys, 0.2, 43).1, a_ho);
        for c in 0..3 {
            assert_eq!(a_ho.iter().filter(|&&i| ys[i] == c).count(), 2);
        }
        assert!(a_tr.iter().all(|i| !a_ho.contains(i)));
    }

    #[test]
    fn bad_training_input_is_a_typed_error() {
        let names = vec!["a".to_string(), "b".to_string()];
        let o = TrainOptions::default();
        let e = train_linear_head("x", &[vec![1.0, 0.0]], &[2], &names, "h", &o).unwrap_err();
        assert_eq!(e.code(), "invalid_parameter");
        assert!(train_linear_head("x", &[], &[], &names, "h", &o).is_err());
        assert!(train_linear_head("x", &[vec![0.0, 0.0]], &[0], &names, "h", &o).is_err());
        assert!(
            train_linear_head("x", &[vec![1.0], vec![1.0, 2.0]], &[0, 1], &names, "h", &o).is_err()
        );
        let dup = vec!["a".to_string(), "a".to_string()];
        assert!(train_linear_head("x", &[vec![1.0]], &[0], &dup, "h", &o).is_err());
    }
}
