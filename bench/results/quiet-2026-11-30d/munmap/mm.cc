#include <sys/mman.h>
#include <fcntl.h>
#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <cstdint>
int main(){
  const size_t sz=64<<20;
  int fd=open("/work/mmtest.bin",O_RDWR|O_CREAT,0644); ftruncate(fd,sz);
  char*w=(char*)mmap(nullptr,sz,PROT_READ|PROT_WRITE,MAP_SHARED,fd,0);
  for(size_t i=0;i<sz;i+=4096) w[i]=1;
  for(int k=0;k<5;k++){
    auto t0=std::chrono::steady_clock::now();
    int fd2=open("/work/mmtest.bin",O_RDONLY);
    char*r=(char*)mmap(nullptr,sz,PROT_READ,MAP_SHARED,fd2,0);
    auto t1=std::chrono::steady_clock::now();
    volatile uint64_t s=0; for(size_t i=0;i<sz;i+=4096) s+=r[i];
    auto t2=std::chrono::steady_clock::now();
    munmap(r,sz); close(fd2);
    auto t3=std::chrono::steady_clock::now();
    auto us=[](auto a,auto b){return std::chrono::duration<double,std::micro>(b-a).count();};
    printf("open+mmap %.1f us, read pages %.1f us, munmap+close %.1f us\n",us(t0,t1),us(t1,t2),us(t2,t3));
  }
  unlink("/work/mmtest.bin");
}
