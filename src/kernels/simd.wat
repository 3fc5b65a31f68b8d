;; SIMD loops of the fused batch-norm kernels, for the tfjs wasm backend. The module imports the
;; backend's own memory, so it reads x and dy and writes y and dx where tfjs keeps them: no copies.
;; It has no data segment and no globals: it never writes outside the addresses it is given.
;;
;; Every function mirrors one loop of loops.ts with the same float64 arithmetic (float32 values
;; promoted exactly, shifted sums, the same operation order), so results agree with the JS loops
;; to float64 rounding of the sums, and elementwise outputs are identical.
;;
;; Addresses are byte offsets. Per-channel arrays (shift, sums, coefficients) are float64.
;; Two layouts, as in loops.ts:
;;   *Last: channels-last, x is [rows, C]; vectorized across 4 channels of a row at a time.
;;   *Runs: x is [outer, C, inner] with inner > 1; vectorized along each channel's run of inner values.
;; The exported functions (at the end) run one of them over `blocks` consecutive blocks of
;; [outer, C, inner] values, block b with the per-channel arrays of set b mod `sets` (each set C
;; float64 values, one after the other): ghost batches of channels-last input (see groups.ts).
;; Build: `npm run build:simd` (wabt) turns this file into simd_binary.ts.
(module
  (import "env" "memory" (memory 1))

  ;; sum[c] += Σ(x − shift[c]), sumSq[c] += Σ(x − shift[c])², channels-last.
  (func $momentsLast (param $x i32) (param $rows i32) (param $C i32)
        (param $shift i32) (param $sum i32) (param $sumSq i32)
    (local $p i32) (local $end i32) (local $rowEnd i32) (local $c8 i32)
    (local $v v128) (local $d v128) (local $e f64)
    (local.set $p (local.get $x))
    (local.set $end (i32.add (local.get $x) (i32.shl (i32.mul (local.get $rows) (local.get $C)) (i32.const 2))))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $rowEnd (i32.add (local.get $p) (i32.shl (local.get $C) (i32.const 2))))
      (local.set $c8 (i32.const 0))
      (block $vecDone (loop $vec
        (br_if $vecDone (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $rowEnd)))
        (local.set $v (v128.load (local.get $p)))
        ;; channels c, c+1
        (local.set $d (f64x2.sub (f64x2.promote_low_f32x4 (local.get $v))
                                 (v128.load (i32.add (local.get $shift) (local.get $c8)))))
        (v128.store (i32.add (local.get $sum) (local.get $c8))
          (f64x2.add (v128.load (i32.add (local.get $sum) (local.get $c8))) (local.get $d)))
        (v128.store (i32.add (local.get $sumSq) (local.get $c8))
          (f64x2.add (v128.load (i32.add (local.get $sumSq) (local.get $c8))) (f64x2.mul (local.get $d) (local.get $d))))
        ;; channels c+2, c+3
        (local.set $d (f64x2.sub (f64x2.promote_low_f32x4
                                   (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))
                                 (v128.load offset=16 (i32.add (local.get $shift) (local.get $c8)))))
        (v128.store offset=16 (i32.add (local.get $sum) (local.get $c8))
          (f64x2.add (v128.load offset=16 (i32.add (local.get $sum) (local.get $c8))) (local.get $d)))
        (v128.store offset=16 (i32.add (local.get $sumSq) (local.get $c8))
          (f64x2.add (v128.load offset=16 (i32.add (local.get $sumSq) (local.get $c8))) (f64x2.mul (local.get $d) (local.get $d))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (local.set $c8 (i32.add (local.get $c8) (i32.const 32)))
        (br $vec)))
      (block $tailDone (loop $tail
        (br_if $tailDone (i32.ge_u (local.get $p) (local.get $rowEnd)))
        (local.set $e (f64.sub (f64.promote_f32 (f32.load (local.get $p)))
                               (f64.load (i32.add (local.get $shift) (local.get $c8)))))
        (f64.store (i32.add (local.get $sum) (local.get $c8))
          (f64.add (f64.load (i32.add (local.get $sum) (local.get $c8))) (local.get $e)))
        (f64.store (i32.add (local.get $sumSq) (local.get $c8))
          (f64.add (f64.load (i32.add (local.get $sumSq) (local.get $c8))) (f64.mul (local.get $e) (local.get $e))))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (local.set $c8 (i32.add (local.get $c8) (i32.const 8)))
        (br $tail)))
      (br $row)))
  )

  ;; The same sums for x laid out as [outer, C, inner]: one run of `inner` values per (o, c).
  (func $momentsRuns (param $x i32) (param $outer i32) (param $C i32) (param $inner i32)
        (param $shift i32) (param $sum i32) (param $sumSq i32)
    (local $p i32) (local $end i32) (local $runEnd i32) (local $c8 i32) (local $c8End i32)
    (local $k v128) (local $kf f64) (local $v v128) (local $d v128)
    (local $s0 v128) (local $s1 v128) (local $q0 v128) (local $q1 v128) (local $ts f64) (local $tq f64) (local $e f64)
    (local.set $p (local.get $x))
    (local.set $end (i32.add (local.get $x)
      (i32.shl (i32.mul (i32.mul (local.get $outer) (local.get $C)) (local.get $inner)) (i32.const 2))))
    (local.set $c8End (i32.shl (local.get $C) (i32.const 3)))
    (block $done (loop $block
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $c8 (i32.const 0))
      (block $channelsDone (loop $channel
        (br_if $channelsDone (i32.ge_u (local.get $c8) (local.get $c8End)))
        (local.set $runEnd (i32.add (local.get $p) (i32.shl (local.get $inner) (i32.const 2))))
        (local.set $kf (f64.load (i32.add (local.get $shift) (local.get $c8))))
        (local.set $k (f64x2.splat (local.get $kf)))
        (local.set $s0 (v128.const f64x2 0 0)) (local.set $s1 (v128.const f64x2 0 0))
        (local.set $q0 (v128.const f64x2 0 0)) (local.set $q1 (v128.const f64x2 0 0))
        (block $vecDone (loop $vec
          (br_if $vecDone (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $runEnd)))
          (local.set $v (v128.load (local.get $p)))
          (local.set $d (f64x2.sub (f64x2.promote_low_f32x4 (local.get $v)) (local.get $k)))
          (local.set $s0 (f64x2.add (local.get $s0) (local.get $d)))
          (local.set $q0 (f64x2.add (local.get $q0) (f64x2.mul (local.get $d) (local.get $d))))
          (local.set $d (f64x2.sub (f64x2.promote_low_f32x4
                                     (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))
                                   (local.get $k)))
          (local.set $s1 (f64x2.add (local.get $s1) (local.get $d)))
          (local.set $q1 (f64x2.add (local.get $q1) (f64x2.mul (local.get $d) (local.get $d))))
          (local.set $p (i32.add (local.get $p) (i32.const 16)))
          (br $vec)))
        (local.set $s0 (f64x2.add (local.get $s0) (local.get $s1)))
        (local.set $q0 (f64x2.add (local.get $q0) (local.get $q1)))
        (local.set $ts (f64.add (f64x2.extract_lane 0 (local.get $s0)) (f64x2.extract_lane 1 (local.get $s0))))
        (local.set $tq (f64.add (f64x2.extract_lane 0 (local.get $q0)) (f64x2.extract_lane 1 (local.get $q0))))
        (block $tailDone (loop $tail
          (br_if $tailDone (i32.ge_u (local.get $p) (local.get $runEnd)))
          (local.set $e (f64.sub (f64.promote_f32 (f32.load (local.get $p))) (local.get $kf)))
          (local.set $ts (f64.add (local.get $ts) (local.get $e)))
          (local.set $tq (f64.add (local.get $tq) (f64.mul (local.get $e) (local.get $e))))
          (local.set $p (i32.add (local.get $p) (i32.const 4)))
          (br $tail)))
        (f64.store (i32.add (local.get $sum) (local.get $c8))
          (f64.add (f64.load (i32.add (local.get $sum) (local.get $c8))) (local.get $ts)))
        (f64.store (i32.add (local.get $sumSq) (local.get $c8))
          (f64.add (f64.load (i32.add (local.get $sumSq) (local.get $c8))) (local.get $tq)))
        (local.set $c8 (i32.add (local.get $c8) (i32.const 8)))
        (br $channel)))
      (br $block)))
  )

  ;; y = x·scale[c] + offset[c] in float64, rounded to float32; channels-last.
  (func $affineLast (param $x i32) (param $y i32) (param $rows i32) (param $C i32)
        (param $scale i32) (param $offset i32)
    (local $p i32) (local $toY i32) (local $end i32) (local $rowEnd i32) (local $c8 i32) (local $v v128)
    (local.set $p (local.get $x))
    (local.set $toY (i32.sub (local.get $y) (local.get $x)))
    (local.set $end (i32.add (local.get $x) (i32.shl (i32.mul (local.get $rows) (local.get $C)) (i32.const 2))))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $rowEnd (i32.add (local.get $p) (i32.shl (local.get $C) (i32.const 2))))
      (local.set $c8 (i32.const 0))
      (block $vecDone (loop $vec
        (br_if $vecDone (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $rowEnd)))
        (local.set $v (v128.load (local.get $p)))
        (v128.store (i32.add (local.get $p) (local.get $toY))
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            (f32x4.demote_f64x2_zero
              (f64x2.add (f64x2.mul (f64x2.promote_low_f32x4 (local.get $v))
                                    (v128.load (i32.add (local.get $scale) (local.get $c8))))
                         (v128.load (i32.add (local.get $offset) (local.get $c8)))))
            (f32x4.demote_f64x2_zero
              (f64x2.add (f64x2.mul (f64x2.promote_low_f32x4
                                      (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))
                                    (v128.load offset=16 (i32.add (local.get $scale) (local.get $c8))))
                         (v128.load offset=16 (i32.add (local.get $offset) (local.get $c8)))))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (local.set $c8 (i32.add (local.get $c8) (i32.const 32)))
        (br $vec)))
      (block $tailDone (loop $tail
        (br_if $tailDone (i32.ge_u (local.get $p) (local.get $rowEnd)))
        (f32.store (i32.add (local.get $p) (local.get $toY))
          (f32.demote_f64 (f64.add (f64.mul (f64.promote_f32 (f32.load (local.get $p)))
                                            (f64.load (i32.add (local.get $scale) (local.get $c8))))
                                   (f64.load (i32.add (local.get $offset) (local.get $c8))))))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (local.set $c8 (i32.add (local.get $c8) (i32.const 8)))
        (br $tail)))
      (br $row)))
  )

  ;; The same for x laid out as [outer, C, inner].
  (func $affineRuns (param $x i32) (param $y i32) (param $outer i32) (param $C i32) (param $inner i32)
        (param $scale i32) (param $offset i32)
    (local $p i32) (local $toY i32) (local $end i32) (local $runEnd i32) (local $c8 i32) (local $c8End i32)
    (local $a v128) (local $b v128) (local $af f64) (local $bf f64) (local $v v128)
    (local.set $p (local.get $x))
    (local.set $toY (i32.sub (local.get $y) (local.get $x)))
    (local.set $end (i32.add (local.get $x)
      (i32.shl (i32.mul (i32.mul (local.get $outer) (local.get $C)) (local.get $inner)) (i32.const 2))))
    (local.set $c8End (i32.shl (local.get $C) (i32.const 3)))
    (block $done (loop $block
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $c8 (i32.const 0))
      (block $channelsDone (loop $channel
        (br_if $channelsDone (i32.ge_u (local.get $c8) (local.get $c8End)))
        (local.set $runEnd (i32.add (local.get $p) (i32.shl (local.get $inner) (i32.const 2))))
        (local.set $af (f64.load (i32.add (local.get $scale) (local.get $c8))))
        (local.set $bf (f64.load (i32.add (local.get $offset) (local.get $c8))))
        (local.set $a (f64x2.splat (local.get $af)))
        (local.set $b (f64x2.splat (local.get $bf)))
        (block $vecDone (loop $vec
          (br_if $vecDone (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $runEnd)))
          (local.set $v (v128.load (local.get $p)))
          (v128.store (i32.add (local.get $p) (local.get $toY))
            (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
              (f32x4.demote_f64x2_zero
                (f64x2.add (f64x2.mul (f64x2.promote_low_f32x4 (local.get $v)) (local.get $a)) (local.get $b)))
              (f32x4.demote_f64x2_zero
                (f64x2.add (f64x2.mul (f64x2.promote_low_f32x4
                                        (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))
                                      (local.get $a))
                           (local.get $b)))))
          (local.set $p (i32.add (local.get $p) (i32.const 16)))
          (br $vec)))
        (block $tailDone (loop $tail
          (br_if $tailDone (i32.ge_u (local.get $p) (local.get $runEnd)))
          (f32.store (i32.add (local.get $p) (local.get $toY))
            (f32.demote_f64 (f64.add (f64.mul (f64.promote_f32 (f32.load (local.get $p))) (local.get $af)) (local.get $bf))))
          (local.set $p (i32.add (local.get $p) (i32.const 4)))
          (br $tail)))
        (local.set $c8 (i32.add (local.get $c8) (i32.const 8)))
        (br $channel)))
      (br $block)))
  )

  ;; sumDy[c] += Σdy, sumDyXs[c] += Σdy·(x − shift[c]), sumXs[c] += Σ(x − shift[c]); channels-last.
  (func $gradientSumsLast (param $dy i32) (param $x i32) (param $rows i32) (param $C i32)
        (param $shift i32) (param $sumDy i32) (param $sumDyXs i32) (param $sumXs i32)
    (local $p i32) (local $toDy i32) (local $end i32) (local $rowEnd i32) (local $c8 i32)
    (local $v v128) (local $w v128) (local $g v128) (local $d v128) (local $ge f64) (local $e f64)
    (local.set $p (local.get $x))
    (local.set $toDy (i32.sub (local.get $dy) (local.get $x)))
    (local.set $end (i32.add (local.get $x) (i32.shl (i32.mul (local.get $rows) (local.get $C)) (i32.const 2))))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $rowEnd (i32.add (local.get $p) (i32.shl (local.get $C) (i32.const 2))))
      (local.set $c8 (i32.const 0))
      (block $vecDone (loop $vec
        (br_if $vecDone (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $rowEnd)))
        (local.set $v (v128.load (local.get $p)))
        (local.set $w (v128.load (i32.add (local.get $p) (local.get $toDy))))
        ;; channels c, c+1
        (local.set $g (f64x2.promote_low_f32x4 (local.get $w)))
        (local.set $d (f64x2.sub (f64x2.promote_low_f32x4 (local.get $v))
                                 (v128.load (i32.add (local.get $shift) (local.get $c8)))))
        (v128.store (i32.add (local.get $sumDy) (local.get $c8))
          (f64x2.add (v128.load (i32.add (local.get $sumDy) (local.get $c8))) (local.get $g)))
        (v128.store (i32.add (local.get $sumDyXs) (local.get $c8))
          (f64x2.add (v128.load (i32.add (local.get $sumDyXs) (local.get $c8))) (f64x2.mul (local.get $g) (local.get $d))))
        (v128.store (i32.add (local.get $sumXs) (local.get $c8))
          (f64x2.add (v128.load (i32.add (local.get $sumXs) (local.get $c8))) (local.get $d)))
        ;; channels c+2, c+3
        (local.set $g (f64x2.promote_low_f32x4
                        (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $w) (local.get $w))))
        (local.set $d (f64x2.sub (f64x2.promote_low_f32x4
                                   (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))
                                 (v128.load offset=16 (i32.add (local.get $shift) (local.get $c8)))))
        (v128.store offset=16 (i32.add (local.get $sumDy) (local.get $c8))
          (f64x2.add (v128.load offset=16 (i32.add (local.get $sumDy) (local.get $c8))) (local.get $g)))
        (v128.store offset=16 (i32.add (local.get $sumDyXs) (local.get $c8))
          (f64x2.add (v128.load offset=16 (i32.add (local.get $sumDyXs) (local.get $c8))) (f64x2.mul (local.get $g) (local.get $d))))
        (v128.store offset=16 (i32.add (local.get $sumXs) (local.get $c8))
          (f64x2.add (v128.load offset=16 (i32.add (local.get $sumXs) (local.get $c8))) (local.get $d)))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (local.set $c8 (i32.add (local.get $c8) (i32.const 32)))
        (br $vec)))
      (block $tailDone (loop $tail
        (br_if $tailDone (i32.ge_u (local.get $p) (local.get $rowEnd)))
        (local.set $ge (f64.promote_f32 (f32.load (i32.add (local.get $p) (local.get $toDy)))))
        (local.set $e (f64.sub (f64.promote_f32 (f32.load (local.get $p)))
                               (f64.load (i32.add (local.get $shift) (local.get $c8)))))
        (f64.store (i32.add (local.get $sumDy) (local.get $c8))
          (f64.add (f64.load (i32.add (local.get $sumDy) (local.get $c8))) (local.get $ge)))
        (f64.store (i32.add (local.get $sumDyXs) (local.get $c8))
          (f64.add (f64.load (i32.add (local.get $sumDyXs) (local.get $c8))) (f64.mul (local.get $ge) (local.get $e))))
        (f64.store (i32.add (local.get $sumXs) (local.get $c8))
          (f64.add (f64.load (i32.add (local.get $sumXs) (local.get $c8))) (local.get $e)))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (local.set $c8 (i32.add (local.get $c8) (i32.const 8)))
        (br $tail)))
      (br $row)))
  )

  ;; The same sums for x and dy laid out as [outer, C, inner].
  (func $gradientSumsRuns (param $dy i32) (param $x i32) (param $outer i32) (param $C i32) (param $inner i32)
        (param $shift i32) (param $sumDy i32) (param $sumDyXs i32) (param $sumXs i32)
    (local $p i32) (local $toDy i32) (local $end i32) (local $runEnd i32) (local $c8 i32) (local $c8End i32)
    (local $k v128) (local $kf f64) (local $v v128) (local $w v128) (local $g v128) (local $d v128)
    (local $sg v128) (local $sgd v128) (local $sd v128)
    (local $tg f64) (local $tgd f64) (local $td f64) (local $ge f64) (local $e f64)
    (local.set $p (local.get $x))
    (local.set $toDy (i32.sub (local.get $dy) (local.get $x)))
    (local.set $end (i32.add (local.get $x)
      (i32.shl (i32.mul (i32.mul (local.get $outer) (local.get $C)) (local.get $inner)) (i32.const 2))))
    (local.set $c8End (i32.shl (local.get $C) (i32.const 3)))
    (block $done (loop $block
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $c8 (i32.const 0))
      (block $channelsDone (loop $channel
        (br_if $channelsDone (i32.ge_u (local.get $c8) (local.get $c8End)))
        (local.set $runEnd (i32.add (local.get $p) (i32.shl (local.get $inner) (i32.const 2))))
        (local.set $kf (f64.load (i32.add (local.get $shift) (local.get $c8))))
        (local.set $k (f64x2.splat (local.get $kf)))
        (local.set $sg (v128.const f64x2 0 0)) (local.set $sgd (v128.const f64x2 0 0)) (local.set $sd (v128.const f64x2 0 0))
        (block $vecDone (loop $vec
          (br_if $vecDone (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $runEnd)))
          (local.set $v (v128.load (local.get $p)))
          (local.set $w (v128.load (i32.add (local.get $p) (local.get $toDy))))
          (local.set $g (f64x2.promote_low_f32x4 (local.get $w)))
          (local.set $d (f64x2.sub (f64x2.promote_low_f32x4 (local.get $v)) (local.get $k)))
          (local.set $sg (f64x2.add (local.get $sg) (local.get $g)))
          (local.set $sgd (f64x2.add (local.get $sgd) (f64x2.mul (local.get $g) (local.get $d))))
          (local.set $sd (f64x2.add (local.get $sd) (local.get $d)))
          (local.set $g (f64x2.promote_low_f32x4
                          (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $w) (local.get $w))))
          (local.set $d (f64x2.sub (f64x2.promote_low_f32x4
                                     (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))
                                   (local.get $k)))
          (local.set $sg (f64x2.add (local.get $sg) (local.get $g)))
          (local.set $sgd (f64x2.add (local.get $sgd) (f64x2.mul (local.get $g) (local.get $d))))
          (local.set $sd (f64x2.add (local.get $sd) (local.get $d)))
          (local.set $p (i32.add (local.get $p) (i32.const 16)))
          (br $vec)))
        (local.set $tg (f64.add (f64x2.extract_lane 0 (local.get $sg)) (f64x2.extract_lane 1 (local.get $sg))))
        (local.set $tgd (f64.add (f64x2.extract_lane 0 (local.get $sgd)) (f64x2.extract_lane 1 (local.get $sgd))))
        (local.set $td (f64.add (f64x2.extract_lane 0 (local.get $sd)) (f64x2.extract_lane 1 (local.get $sd))))
        (block $tailDone (loop $tail
          (br_if $tailDone (i32.ge_u (local.get $p) (local.get $runEnd)))
          (local.set $ge (f64.promote_f32 (f32.load (i32.add (local.get $p) (local.get $toDy)))))
          (local.set $e (f64.sub (f64.promote_f32 (f32.load (local.get $p))) (local.get $kf)))
          (local.set $tg (f64.add (local.get $tg) (local.get $ge)))
          (local.set $tgd (f64.add (local.get $tgd) (f64.mul (local.get $ge) (local.get $e))))
          (local.set $td (f64.add (local.get $td) (local.get $e)))
          (local.set $p (i32.add (local.get $p) (i32.const 4)))
          (br $tail)))
        (f64.store (i32.add (local.get $sumDy) (local.get $c8))
          (f64.add (f64.load (i32.add (local.get $sumDy) (local.get $c8))) (local.get $tg)))
        (f64.store (i32.add (local.get $sumDyXs) (local.get $c8))
          (f64.add (f64.load (i32.add (local.get $sumDyXs) (local.get $c8))) (local.get $tgd)))
        (f64.store (i32.add (local.get $sumXs) (local.get $c8))
          (f64.add (f64.load (i32.add (local.get $sumXs) (local.get $c8))) (local.get $td)))
        (local.set $c8 (i32.add (local.get $c8) (i32.const 8)))
        (br $channel)))
      (br $block)))
  )

  ;; dx = a[c]·dy + b[c]·x + k[c] in float64, rounded to float32; channels-last.
  (func $gradientApplyLast (param $dy i32) (param $x i32) (param $dx i32) (param $rows i32) (param $C i32)
        (param $a i32) (param $b i32) (param $k i32)
    (local $p i32) (local $toDy i32) (local $toDx i32) (local $end i32) (local $rowEnd i32) (local $c8 i32)
    (local $v v128) (local $w v128)
    (local.set $p (local.get $x))
    (local.set $toDy (i32.sub (local.get $dy) (local.get $x)))
    (local.set $toDx (i32.sub (local.get $dx) (local.get $x)))
    (local.set $end (i32.add (local.get $x) (i32.shl (i32.mul (local.get $rows) (local.get $C)) (i32.const 2))))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $rowEnd (i32.add (local.get $p) (i32.shl (local.get $C) (i32.const 2))))
      (local.set $c8 (i32.const 0))
      (block $vecDone (loop $vec
        (br_if $vecDone (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $rowEnd)))
        (local.set $v (v128.load (local.get $p)))
        (local.set $w (v128.load (i32.add (local.get $p) (local.get $toDy))))
        (v128.store (i32.add (local.get $p) (local.get $toDx))
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            (f32x4.demote_f64x2_zero
              (f64x2.add
                (f64x2.add (f64x2.mul (v128.load (i32.add (local.get $a) (local.get $c8))) (f64x2.promote_low_f32x4 (local.get $w)))
                           (f64x2.mul (v128.load (i32.add (local.get $b) (local.get $c8))) (f64x2.promote_low_f32x4 (local.get $v))))
                (v128.load (i32.add (local.get $k) (local.get $c8)))))
            (f32x4.demote_f64x2_zero
              (f64x2.add
                (f64x2.add (f64x2.mul (v128.load offset=16 (i32.add (local.get $a) (local.get $c8)))
                                      (f64x2.promote_low_f32x4
                                        (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $w) (local.get $w))))
                           (f64x2.mul (v128.load offset=16 (i32.add (local.get $b) (local.get $c8)))
                                      (f64x2.promote_low_f32x4
                                        (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))))
                (v128.load offset=16 (i32.add (local.get $k) (local.get $c8)))))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (local.set $c8 (i32.add (local.get $c8) (i32.const 32)))
        (br $vec)))
      (block $tailDone (loop $tail
        (br_if $tailDone (i32.ge_u (local.get $p) (local.get $rowEnd)))
        (f32.store (i32.add (local.get $p) (local.get $toDx))
          (f32.demote_f64
            (f64.add
              (f64.add (f64.mul (f64.load (i32.add (local.get $a) (local.get $c8)))
                                (f64.promote_f32 (f32.load (i32.add (local.get $p) (local.get $toDy)))))
                       (f64.mul (f64.load (i32.add (local.get $b) (local.get $c8)))
                                (f64.promote_f32 (f32.load (local.get $p)))))
              (f64.load (i32.add (local.get $k) (local.get $c8))))))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (local.set $c8 (i32.add (local.get $c8) (i32.const 8)))
        (br $tail)))
      (br $row)))
  )

  ;; The same for dy, x, dx laid out as [outer, C, inner].
  (func $gradientApplyRuns (param $dy i32) (param $x i32) (param $dx i32)
        (param $outer i32) (param $C i32) (param $inner i32) (param $a i32) (param $b i32) (param $k i32)
    (local $p i32) (local $toDy i32) (local $toDx i32) (local $end i32) (local $runEnd i32) (local $c8 i32) (local $c8End i32)
    (local $av v128) (local $bv v128) (local $kv v128) (local $af f64) (local $bf f64) (local $kf f64)
    (local $v v128) (local $w v128)
    (local.set $p (local.get $x))
    (local.set $toDy (i32.sub (local.get $dy) (local.get $x)))
    (local.set $toDx (i32.sub (local.get $dx) (local.get $x)))
    (local.set $end (i32.add (local.get $x)
      (i32.shl (i32.mul (i32.mul (local.get $outer) (local.get $C)) (local.get $inner)) (i32.const 2))))
    (local.set $c8End (i32.shl (local.get $C) (i32.const 3)))
    (block $done (loop $block
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $c8 (i32.const 0))
      (block $channelsDone (loop $channel
        (br_if $channelsDone (i32.ge_u (local.get $c8) (local.get $c8End)))
        (local.set $runEnd (i32.add (local.get $p) (i32.shl (local.get $inner) (i32.const 2))))
        (local.set $af (f64.load (i32.add (local.get $a) (local.get $c8))))
        (local.set $bf (f64.load (i32.add (local.get $b) (local.get $c8))))
        (local.set $kf (f64.load (i32.add (local.get $k) (local.get $c8))))
        (local.set $av (f64x2.splat (local.get $af)))
        (local.set $bv (f64x2.splat (local.get $bf)))
        (local.set $kv (f64x2.splat (local.get $kf)))
        (block $vecDone (loop $vec
          (br_if $vecDone (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $runEnd)))
          (local.set $v (v128.load (local.get $p)))
          (local.set $w (v128.load (i32.add (local.get $p) (local.get $toDy))))
          (v128.store (i32.add (local.get $p) (local.get $toDx))
            (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
              (f32x4.demote_f64x2_zero
                (f64x2.add
                  (f64x2.add (f64x2.mul (local.get $av) (f64x2.promote_low_f32x4 (local.get $w)))
                             (f64x2.mul (local.get $bv) (f64x2.promote_low_f32x4 (local.get $v))))
                  (local.get $kv)))
              (f32x4.demote_f64x2_zero
                (f64x2.add
                  (f64x2.add (f64x2.mul (local.get $av)
                                        (f64x2.promote_low_f32x4
                                          (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $w) (local.get $w))))
                             (f64x2.mul (local.get $bv)
                                        (f64x2.promote_low_f32x4
                                          (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))))
                  (local.get $kv)))))
          (local.set $p (i32.add (local.get $p) (i32.const 16)))
          (br $vec)))
        (block $tailDone (loop $tail
          (br_if $tailDone (i32.ge_u (local.get $p) (local.get $runEnd)))
          (f32.store (i32.add (local.get $p) (local.get $toDx))
            (f32.demote_f64
              (f64.add
                (f64.add (f64.mul (local.get $af) (f64.promote_f32 (f32.load (i32.add (local.get $p) (local.get $toDy)))))
                         (f64.mul (local.get $bf) (f64.promote_f32 (f32.load (local.get $p)))))
                (local.get $kf))))
          (local.set $p (i32.add (local.get $p) (i32.const 4)))
          (br $tail)))
        (local.set $c8 (i32.add (local.get $c8) (i32.const 8)))
        (br $channel)))
      (br $block)))
  )
;; The exports: each runs its loop over the blocks (see the top of the file), picking *Last for
;; inner = 1 and *Runs otherwise. $blockBytes: bytes of one block of x; $setBytes: of one set.

  (func (export "moments") (param $x i32) (param $blocks i32) (param $sets i32) (param $outer i32) (param $C i32) (param $inner i32)
        (param $shift i32) (param $sum i32) (param $sumSq i32)
    (local $b i32) (local $blockBytes i32) (local $setBytes i32) (local $set i32)
    (local.set $blockBytes (i32.shl (i32.mul (i32.mul (local.get $outer) (local.get $C)) (local.get $inner)) (i32.const 2)))
    (local.set $setBytes (i32.shl (local.get $C) (i32.const 3)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $b) (local.get $blocks)))
      (local.set $set (i32.mul (i32.rem_u (local.get $b) (local.get $sets)) (local.get $setBytes)))
      (if (i32.eq (local.get $inner) (i32.const 1))
        (then (call $momentsLast (local.get $x) (local.get $outer) (local.get $C) (i32.add (local.get $shift) (local.get $set))
                (i32.add (local.get $sum) (local.get $set)) (i32.add (local.get $sumSq) (local.get $set))))
        (else (call $momentsRuns (local.get $x) (local.get $outer) (local.get $C) (local.get $inner) (i32.add (local.get $shift) (local.get $set))
                (i32.add (local.get $sum) (local.get $set)) (i32.add (local.get $sumSq) (local.get $set)))))
      (local.set $x (i32.add (local.get $x) (local.get $blockBytes)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $next)))
  )

  (func (export "affine") (param $x i32) (param $y i32) (param $blocks i32) (param $sets i32) (param $outer i32) (param $C i32)
        (param $inner i32) (param $scale i32) (param $offset i32)
    (local $b i32) (local $blockBytes i32) (local $setBytes i32) (local $set i32)
    (local.set $blockBytes (i32.shl (i32.mul (i32.mul (local.get $outer) (local.get $C)) (local.get $inner)) (i32.const 2)))
    (local.set $setBytes (i32.shl (local.get $C) (i32.const 3)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $b) (local.get $blocks)))
      (local.set $set (i32.mul (i32.rem_u (local.get $b) (local.get $sets)) (local.get $setBytes)))
      (if (i32.eq (local.get $inner) (i32.const 1))
        (then (call $affineLast (local.get $x) (local.get $y) (local.get $outer) (local.get $C)
                (i32.add (local.get $scale) (local.get $set)) (i32.add (local.get $offset) (local.get $set))))
        (else (call $affineRuns (local.get $x) (local.get $y) (local.get $outer) (local.get $C) (local.get $inner)
                (i32.add (local.get $scale) (local.get $set)) (i32.add (local.get $offset) (local.get $set)))))
      (local.set $x (i32.add (local.get $x) (local.get $blockBytes)))
      (local.set $y (i32.add (local.get $y) (local.get $blockBytes)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $next)))
  )

  (func (export "gradientSums") (param $dy i32) (param $x i32) (param $blocks i32) (param $sets i32) (param $outer i32) (param $C i32)
        (param $inner i32) (param $shift i32) (param $sumDy i32) (param $sumDyXs i32) (param $sumXs i32)
    (local $b i32) (local $blockBytes i32) (local $setBytes i32) (local $set i32)
    (local.set $blockBytes (i32.shl (i32.mul (i32.mul (local.get $outer) (local.get $C)) (local.get $inner)) (i32.const 2)))
    (local.set $setBytes (i32.shl (local.get $C) (i32.const 3)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $b) (local.get $blocks)))
      (local.set $set (i32.mul (i32.rem_u (local.get $b) (local.get $sets)) (local.get $setBytes)))
      (if (i32.eq (local.get $inner) (i32.const 1))
        (then (call $gradientSumsLast (local.get $dy) (local.get $x) (local.get $outer) (local.get $C) (i32.add (local.get $shift) (local.get $set))
                (i32.add (local.get $sumDy) (local.get $set)) (i32.add (local.get $sumDyXs) (local.get $set)) (i32.add (local.get $sumXs) (local.get $set))))
        (else (call $gradientSumsRuns (local.get $dy) (local.get $x) (local.get $outer) (local.get $C) (local.get $inner)
                (i32.add (local.get $shift) (local.get $set)) (i32.add (local.get $sumDy) (local.get $set))
                (i32.add (local.get $sumDyXs) (local.get $set)) (i32.add (local.get $sumXs) (local.get $set)))))
      (local.set $dy (i32.add (local.get $dy) (local.get $blockBytes)))
      (local.set $x (i32.add (local.get $x) (local.get $blockBytes)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $next)))
  )

  (func (export "gradientApply") (param $dy i32) (param $x i32) (param $dx i32) (param $blocks i32) (param $sets i32) (param $outer i32)
        (param $C i32) (param $inner i32) (param $a i32) (param $bc i32) (param $k i32)
    (local $b i32) (local $blockBytes i32) (local $setBytes i32) (local $set i32)
    (local.set $blockBytes (i32.shl (i32.mul (i32.mul (local.get $outer) (local.get $C)) (local.get $inner)) (i32.const 2)))
    (local.set $setBytes (i32.shl (local.get $C) (i32.const 3)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $b) (local.get $blocks)))
      (local.set $set (i32.mul (i32.rem_u (local.get $b) (local.get $sets)) (local.get $setBytes)))
      (if (i32.eq (local.get $inner) (i32.const 1))
        (then (call $gradientApplyLast (local.get $dy) (local.get $x) (local.get $dx) (local.get $outer) (local.get $C)
                (i32.add (local.get $a) (local.get $set)) (i32.add (local.get $bc) (local.get $set)) (i32.add (local.get $k) (local.get $set))))
        (else (call $gradientApplyRuns (local.get $dy) (local.get $x) (local.get $dx) (local.get $outer) (local.get $C) (local.get $inner)
                (i32.add (local.get $a) (local.get $set)) (i32.add (local.get $bc) (local.get $set)) (i32.add (local.get $k) (local.get $set)))))
      (local.set $dy (i32.add (local.get $dy) (local.get $blockBytes)))
      (local.set $x (i32.add (local.get $x) (local.get $blockBytes)))
      (local.set $dx (i32.add (local.get $dx) (local.get $blockBytes)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $next)))
  )
)
