# bus-throughput_vs_workers: drawn by sluice bench (bench/common/plots.cc); rerun with `gnuplot bus-throughput_vs_workers.gp`
set termoption noenhanced
set terminal pngcairo size 1100,650 noenhanced
set output 'bench/results/all-2026-11-30/bus-throughput_vs_workers.png'
set title "bus: sharded 1 -> N, throughput vs workers\none producer, median of 3, 2 CPUs\nideal = N x the one-worker rate"
set grid
set key below box
set bmargin 6
set xlabel 'workers'
set ylabel 'events/s'
set xtics 1
set offsets 0.2, 0.2, 0, 0
set yrange [0:*]
$d1 << EOD
1 4224915.4
2 7988278.77
EOD
$d2 << EOD
1 4224915.4
2 8449830.8
EOD
plot $d1 using 1:2 with linespoints pt 7 ps 1 lw 2 title 'events_per_s', \
     $d2 using 1:2 with linespoints pt 7 ps 1 lw 2 title 'ideal_N_x_rate_1'
set terminal svg size 1100,650 dynamic noenhanced background '#ffffff'
set output 'bench/results/all-2026-11-30/bus-throughput_vs_workers.svg'
replot
unset output
