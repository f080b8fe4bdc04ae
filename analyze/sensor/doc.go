// Package sensor characterises how a GPU power field behaves as a sensor:
// how often its value really changes, how often it was sampled, and how much
// of a window the samples cover without holes.
//
// The method is that of Z. Yang, K. Adamek and W. Armour, "Part-time Power
// Measurements: nvidia-smi's Lack of Attention", arXiv:2312.02741 (2023),
// published at SC24 as "Accurate and Convenient Energy Measurements for
// GPUs: A Detailed Study of NVIDIA GPU's Built-In Power Sensor"; code at
// github.com/JimZeyuYang/GPU_Power_Benchmark. A power field polled
// faster than the sensor updates repeats its last value; the sensor's update
// period is found from the instants the value changes, not from the polling
// rate. They report, for example, 20 ms for a V100-SXM2 and about 100 ms for
// A100 and H100 cards; the recorder can poll at 100 Hz or more, so most
// samples of a 100 ms sensor are repeats, and an energy integral over a
// window shorter than a few update periods rests on very few independent
// readings.
//
// Definitions, for the samples whose timestamps t satisfy start <= t <= end
// (only these are used; nothing outside the window is looked at):
//
//   - Samples: how many there are.
//   - Updates: how many of them differ from the sample before them in the
//     window (a value change). The first sample in the window is never a
//     change. Two NaN values in a row are not a change.
//   - UpdatePeriodMs: the median of the intervals between consecutive value
//     changes, in milliseconds, as in the study. The median is robust to an
//     update that happened to repeat the previous value (which doubles one
//     interval) and to polling jitter; each change is seen at the first
//     sample after it, so single intervals are quantised by the sampling
//     interval but the median is not biased by it. NaN with fewer than two
//     changes.
//   - SampleRateHz: (Samples-1) / (last - first timestamp), in hertz. NaN
//     with fewer than two samples or no time between them.
//   - CoveragePct: the percentage of [start, end] that is not inside a hole
//     in the recording. A gap between consecutive samples counts as covered
//     when it is no longer than GapFactor times the median sampling interval
//     of the window, and as a hole otherwise. The stretches from start to the
//     first sample and from the last sample to end are judged by the same
//     rule, so a window that begins and ends near samples of an unbroken
//     recording is covered 100%. NaN with fewer than two samples (there is
//     no sampling interval to judge by) or when end <= start.
//
// Timestamps are nanoseconds and are expected in ascending order; unsorted
// input gives meaningless numbers but does not panic.
package sensor
