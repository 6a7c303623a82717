# e2e-throughput_vs_producers: drawn by sluice bench (bench/common/plots.cc); rerun with `gnuplot e2e-throughput_vs_producers.gp`
set termoption noenhanced
set terminal pngcairo size 1100,650 noenhanced
set output 'bench/results/plots-2026-11-29/plots/e2e-throughput_vs_producers.png'
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
1 855594.114
2 789627.117
3 724472.592
EOD
$d2 << EOD
1 8661587.95
2 8661587.95
3 8661587.95
EOD
plot $d1 using 1:2 with linespoints pt 7 ps 1 lw 2 title 'submit_events_per_s', \
     $d2 using 1:2 with linespoints pt 7 ps 1 lw 2 title 'direct_append_1_thread'
set terminal svg size 1100,650 dynamic noenhanced background '#ffffff'
set output 'bench/results/plots-2026-11-29/plots/e2e-throughput_vs_producers.svg'
replot
unset output
