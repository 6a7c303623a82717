# e2e-throughput_vs_producers: drawn by sluice bench (bench/common/plots.cc); rerun with `gnuplot e2e-throughput_vs_producers.gp`
set termoption noenhanced
set terminal pngcairo size 1100,650 noenhanced
set output 'bench/results/all-2026-11-30/e2e-throughput_vs_producers.png'
set title "e2e: throughput vs producers (ingress submitters)\nevents/s acknowledged, durability none, submitters all on cpu A, writer busy-spin on cpu B, 256 in flight each, one run each\nflat line: one direct appender (best of 3)"
set grid
set key below box
set bmargin 6
set xlabel 'producers'
set ylabel 'events/s'
set xtics 1
set offsets 0.2, 0.2, 0, 0
set yrange [0:*]
$d1 << EOD
1 3374025.24
2 3901256.83
3 4250759.8
EOD
$d2 << EOD
1 20738333.5
2 20738333.5
3 20738333.5
EOD
plot $d1 using 1:2 with linespoints pt 7 ps 1 lw 2 title 'submit_events_per_s', \
     $d2 using 1:2 with linespoints pt 7 ps 1 lw 2 title 'direct_append_1_thread'
set terminal svg size 1100,650 dynamic noenhanced background '#ffffff'
set output 'bench/results/all-2026-11-30/e2e-throughput_vs_producers.svg'
replot
unset output
